import { MAX_NAME_LENGTH, TENANT_ID_PATTERN } from '@pgs/tenancy';

/** The OpenAPI 3.0 document of the REST API, served at /openapi.json. */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errors = {
  '400': { description: 'Invalid argument (the field is named)', content: json(ref('Error')) },
  '404': { description: 'Not found', content: json(ref('Error')) },
  '409': { description: 'Already exists, failed precondition, or stale revision', content: json(ref('Error')) },
  '503': { description: 'The store cannot be written', content: json(ref('Error')) },
};
const idParam = { name: 'uuid', in: 'path', required: true, description: 'The instance (tenant) id', schema: { type: 'string' } };
const nameParam = (what: string) => ({ name: `${what}_uuid`, in: 'path', required: true, description: `The ${what} name`, schema: { type: 'string' } });
const idempotency = { name: 'Idempotency-Key', in: 'header', required: false, description: 'A retry with the same key within 24 h returns the first result', schema: { type: 'string' } };
const ifMatch = { name: 'If-Match', in: 'header', required: false, description: 'The revision read (optimistic concurrency); stale = 409', schema: { type: 'string' } };

/** The document. */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: { title: 'pgs coordinator REST API', version: '1', description: 'Instance-per-tenant PostgreSQL (seed 004 shape). The same operations as the gRPC CoordinatorService.' },
    paths: {
      '/v1/postgres/instances': {
        post: {
          summary: 'Create an instance (tenant); the owner user and database are named after it',
          parameters: [idempotency],
          requestBody: { required: true, content: json(ref('InstanceCreate')) },
          responses: { '201': { description: 'Created (status NEW); generated_password is set once when no password was given', content: json(ref('Instance')) }, ...errors },
        },
        get: { summary: 'List instances', responses: { '200': { description: 'Instances', content: json({ type: 'object', properties: { instances: { type: 'array', items: ref('Instance') } } }) } } },
      },
      '/v1/postgres/instances/{uuid}': {
        parameters: [idParam],
        get: { summary: 'Get an instance', responses: { '200': { description: 'The instance', content: json(ref('Instance')) }, ...errors } },
        put: {
          summary: 'Update an instance (whole spec; absent fields keep their value); needs the revision read',
          parameters: [ifMatch],
          requestBody: { required: true, content: json(ref('InstanceUpdate')) },
          responses: { '200': { description: 'Updated', content: json(ref('Instance')) }, ...errors },
        },
        delete: { summary: 'Delete an instance and its data', parameters: [ifMatch], responses: { '202': { description: 'Deletion started', content: json(ref('Instance')) }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/start': { parameters: [idParam], post: { summary: 'Start', responses: { '200': { description: 'Run state RUNNING', content: json(ref('Instance')) }, ...errors } } },
      '/v1/postgres/instances/{uuid}/stop': { parameters: [idParam], post: { summary: 'Stop (data kept)', responses: { '200': { description: 'Run state STOPPED', content: json(ref('Instance')) }, ...errors } } },
      '/v1/postgres/instances/{uuid}/access': {
        parameters: [idParam],
        put: {
          summary: 'External access through the routers on or off',
          requestBody: { required: true, content: json({ type: 'object', required: ['external_access'], properties: { external_access: { type: 'boolean' } } }) },
          responses: { '200': { description: 'Updated', content: json(ref('Instance')) }, ...errors },
        },
      },
      '/v1/postgres/instances/{uuid}/users': {
        parameters: [idParam],
        post: { summary: 'Create a user', parameters: [idempotency], requestBody: { required: true, content: json(ref('UserCreate')) }, responses: { '201': { description: 'Created', content: json(ref('User')) }, ...errors } },
        get: { summary: 'List users', responses: { '200': { description: 'Users', content: json({ type: 'object', properties: { users: { type: 'array', items: ref('User') } } }) }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/users/{user_uuid}': {
        parameters: [idParam, nameParam('user')],
        get: { summary: 'Get a user', responses: { '200': { description: 'The user', content: json(ref('User')) }, ...errors } },
        put: {
          summary: 'Set a new password',
          requestBody: { required: true, content: json({ type: 'object', required: ['password'], properties: { password: { type: 'string', minLength: 8, maxLength: 99 } } }) },
          responses: { '200': { description: 'Updated', content: json(ref('User')) }, ...errors },
        },
        delete: { summary: 'Delete a user', responses: { '204': { description: 'Deleted' }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/databases': {
        parameters: [idParam],
        post: { summary: 'Create a database', parameters: [idempotency], requestBody: { required: true, content: json(ref('DatabaseCreate')) }, responses: { '201': { description: 'Created', content: json(ref('Database')) }, ...errors } },
        get: { summary: 'List databases', responses: { '200': { description: 'Databases', content: json({ type: 'object', properties: { databases: { type: 'array', items: ref('Database') } } }) }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/databases/{db_uuid}': {
        parameters: [idParam, nameParam('db')],
        get: { summary: 'Get a database', responses: { '200': { description: 'The database', content: json(ref('Database')) }, ...errors } },
        delete: { summary: 'Delete a database', responses: { '204': { description: 'Deleted' }, ...errors } },
      },
      '/v1/types/postgres/versions': { get: { summary: 'List PostgreSQL versions', responses: { '200': { description: 'Versions', content: json({ type: 'object', properties: { versions: { type: 'array', items: ref('Version') } } }) } } } },
      '/v1/types/postgres/versions/{uuid}': {
        parameters: [{ name: 'uuid', in: 'path', required: true, schema: { type: 'string' } }],
        get: { summary: 'Get a version', responses: { '200': { description: 'The version', content: json(ref('Version')) }, ...errors } },
      },
      '/v1/fleet': { get: { summary: 'Fleet summary', responses: { '200': { description: 'Counts and problems', content: json({ type: 'object' }) } } } },
      '/v1/routes': { get: { summary: 'The route table', responses: { '200': { description: 'Routes and revision', content: json({ type: 'object' }) } } } },
    },
    components: {
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: { type: 'object', properties: { code: { type: 'string', example: 'INVALID_ARGUMENT' }, error_code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } } },
          },
        },
        InstanceCreate: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', pattern: TENANT_ID_PATTERN, maxLength: MAX_NAME_LENGTH },
            description: { type: 'string', maxLength: 1024 },
            cpu: { type: 'number', minimum: 1, maximum: 128, description: 'cores, fractions allowed' },
            ram: { oneOf: [{ type: 'integer', minimum: 512, maximum: 1048576 }, { type: 'string', example: '2Gi' }], description: 'MB' },
            disk_size: { oneOf: [{ type: 'number', minimum: 8, maximum: 1024 }, { type: 'string', example: '100Gi' }], description: 'GB' },
            nodes_number: { type: 'integer', minimum: 1, maximum: 16 },
            sync_replica_number: { type: 'integer', minimum: 0, maximum: 15 },
            version: { type: 'string', example: '/v1/types/postgres/versions/15' },
            password: { type: 'string', minLength: 8, maxLength: 99, description: 'owner password; generated and returned once when absent' },
            external_access: { type: 'boolean', default: false },
            connection_limit: { type: 'integer', minimum: 0 },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            placement: { type: 'object', additionalProperties: { type: 'string' } },
            run_state: { type: 'string', enum: ['RUNNING', 'STOPPED'] },
          },
        },
        InstanceUpdate: { allOf: [ref('InstanceCreate'), { type: 'object', properties: { revision: { type: 'integer', description: 'the revision read (or If-Match)' } } }] },
        Instance: {
          type: 'object',
          properties: {
            uuid: { type: 'string' },
            name: { type: 'string' },
            status: { type: 'string', enum: ['NEW', 'IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'SUSPENDED', 'DELETING', 'FAILING_OVER'] },
            status_reason: { type: 'string' },
            revision: { type: 'integer' },
            cpu: { type: 'number' },
            ram: { type: 'integer' },
            disk_size: { type: 'number' },
            nodes_number: { type: 'integer' },
            sync_replica_number: { type: 'integer' },
            version: { type: 'string' },
            external_access: { type: 'boolean' },
            connection_limit: { type: 'integer' },
            generated_password: { type: 'string', description: 'only in the create answer, when generated' },
            nodes: { type: 'array', items: { type: 'object' } },
            route: { type: 'object' },
          },
        },
        UserCreate: { type: 'object', required: ['name', 'password'], properties: { name: { type: 'string' }, description: { type: 'string' }, password: { type: 'string', minLength: 8, maxLength: 99 } } },
        User: { type: 'object', properties: { uuid: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' }, status: { type: 'string', enum: ['NEW', 'ACTIVE', 'ERROR', 'DELETING'] }, owner: { type: 'boolean' } } },
        DatabaseCreate: {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string' }, description: { type: 'string' }, owner: { type: 'string', description: 'user reference /v1/postgres/instances/{uuid}/users/{name} or a name; default the owner user' } },
        },
        Database: { type: 'object', properties: { uuid: { type: 'string' }, name: { type: 'string' }, owner: { type: 'string' }, status: { type: 'string' } } },
        Version: { type: 'object', properties: { uuid: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' }, image: { type: 'string' }, created_at: { type: 'string' }, updated_at: { type: 'string' } } },
      },
    },
  };
}

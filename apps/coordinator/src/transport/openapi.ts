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
const idempotency = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'A retry with the same key within 24 h returns the first result',
  schema: { type: 'string' },
};
const ifMatch = {
  name: 'If-Match',
  in: 'header',
  required: false,
  description: 'The revision read (optimistic concurrency); stale = 409',
  schema: { type: 'string' },
};

/** The document. */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: {
      title: 'pgs coordinator REST API',
      version: '1',
      description: 'Instance-per-tenant PostgreSQL. The same operations as the gRPC CoordinatorService.',
    },
    paths: {
      '/v1/postgres/instances': {
        post: {
          summary: 'Create an instance (tenant); the owner user and database are named after it',
          parameters: [idempotency],
          requestBody: { required: true, content: json(ref('InstanceCreate')) },
          responses: {
            '201': { description: 'Created (status NEW); generated_password is set once when no password was given', content: json(ref('Instance')) },
            ...errors,
          },
        },
        get: {
          summary: 'List instances',
          responses: {
            '200': { description: 'Instances', content: json({ type: 'object', properties: { instances: { type: 'array', items: ref('Instance') } } }) },
          },
        },
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
        delete: {
          summary: 'Delete an instance and its data',
          parameters: [ifMatch],
          responses: { '202': { description: 'Deletion started', content: json(ref('Instance')) }, ...errors },
        },
      },
      '/v1/postgres/instances/{uuid}/start': {
        parameters: [idParam],
        post: { summary: 'Start', responses: { '200': { description: 'Run state RUNNING', content: json(ref('Instance')) }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/stop': {
        parameters: [idParam],
        post: { summary: 'Stop (data kept)', responses: { '200': { description: 'Run state STOPPED', content: json(ref('Instance')) }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/suspend': {
        parameters: [idParam],
        post: {
          summary: 'Suspend (scale to zero: instances stop, data kept; the first client through a router wakes it)',
          responses: { '200': { description: 'Status SUSPENDED', content: json(ref('Instance')) }, ...errors },
        },
      },
      '/v1/postgres/instances/{uuid}/resume': {
        parameters: [idParam],
        post: {
          summary: 'Wake a suspended instance now; 409 with the reason when its host has no room left for it',
          responses: { '200': { description: 'Waking (IN_PROGRESS) or already awake', content: json(ref('Instance')) }, ...errors },
        },
      },
      '/v1/postgres/instances/{uuid}/upgrade': {
        parameters: [idParam],
        post: {
          summary: 'Major upgrade by logical replication (to_major), or once switched: rollback or finalize',
          requestBody: {
            required: true,
            content: json({
              type: 'object',
              properties: {
                to_major: { type: 'integer', description: 'Start an upgrade to this major; refused with every reason at once (409)' },
                rollback: { type: 'boolean', description: 'Switched: the kept old instance takes the tenant back (writes since the switch are lost)' },
                finalize: { type: 'boolean', description: 'Switched: the kept old instance is deleted' },
                replica_identity_full: { type: 'boolean', description: 'Tables without a primary key get REPLICA IDENTITY FULL instead of a refusal' },
                wait: { type: 'boolean', description: 'Answer once switched (or abandoned), or once the rollback or finalize ended' },
              },
            }),
          },
          responses: { '200': { description: 'The instance with its upgrade', content: json(ref('Instance')) }, ...errors },
        },
      },
      '/v1/postgres/instances/{uuid}/access': {
        parameters: [idParam],
        put: {
          summary: 'External access through the routers on or off',
          requestBody: {
            required: true,
            content: json({ type: 'object', required: ['external_access'], properties: { external_access: { type: 'boolean' } } }),
          },
          responses: { '200': { description: 'Updated', content: json(ref('Instance')) }, ...errors },
        },
      },
      '/v1/postgres/instances/{uuid}/users': {
        parameters: [idParam],
        post: {
          summary: 'Create a user',
          parameters: [idempotency],
          requestBody: { required: true, content: json(ref('UserCreate')) },
          responses: { '201': { description: 'Created', content: json(ref('User')) }, ...errors },
        },
        get: {
          summary: 'List users',
          responses: {
            '200': { description: 'Users', content: json({ type: 'object', properties: { users: { type: 'array', items: ref('User') } } }) },
            ...errors,
          },
        },
      },
      '/v1/postgres/instances/{uuid}/users/{user_uuid}': {
        parameters: [idParam, nameParam('user')],
        get: { summary: 'Get a user', responses: { '200': { description: 'The user', content: json(ref('User')) }, ...errors } },
        put: {
          summary: 'Set a new password',
          requestBody: {
            required: true,
            content: json({ type: 'object', required: ['password'], properties: { password: { type: 'string', minLength: 8, maxLength: 99 } } }),
          },
          responses: { '200': { description: 'Updated', content: json(ref('User')) }, ...errors },
        },
        delete: { summary: 'Delete a user', responses: { '204': { description: 'Deleted' }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/databases': {
        parameters: [idParam],
        post: {
          summary: 'Create a database',
          parameters: [idempotency],
          requestBody: { required: true, content: json(ref('DatabaseCreate')) },
          responses: { '201': { description: 'Created', content: json(ref('Database')) }, ...errors },
        },
        get: {
          summary: 'List databases',
          responses: {
            '200': { description: 'Databases', content: json({ type: 'object', properties: { databases: { type: 'array', items: ref('Database') } } }) },
            ...errors,
          },
        },
      },
      '/v1/postgres/instances/{uuid}/databases/{db_uuid}': {
        parameters: [idParam, nameParam('db')],
        get: { summary: 'Get a database', responses: { '200': { description: 'The database', content: json(ref('Database')) }, ...errors } },
        delete: { summary: 'Delete a database', responses: { '204': { description: 'Deleted' }, ...errors } },
      },
      '/v1/postgres/instances/{uuid}/backups': {
        parameters: [idParam],
        post: {
          summary: 'Take a backup now (type absent: full when no restorable full exists, else diff); 409 while one runs or without a running primary',
          parameters: [idempotency],
          requestBody: { required: false, content: json({ type: 'object', properties: { type: { type: 'string', enum: ['full', 'diff', 'incr'] } } }) },
          responses: { '201': { description: 'Started (status running)', content: json(ref('Backup')) }, ...errors },
        },
        get: {
          summary: 'List backups, newest first, with the recovery window',
          parameters: [{ name: 'all', in: 'query', required: false, description: 'true: failed and expired backups too', schema: { type: 'boolean' } }],
          responses: {
            '200': {
              description: 'Backups',
              content: json({ type: 'object', properties: { backups: { type: 'array', items: ref('Backup') }, window: ref('RecoveryWindow') } }),
            },
            ...errors,
          },
        },
      },
      '/v1/postgres/instances/{uuid}/backups/{backup_id}': {
        parameters: [idParam, { name: 'backup_id', in: 'path', required: true, schema: { type: 'string' } }],
        get: { summary: 'Get a backup', responses: { '200': { description: 'The backup', content: json(ref('Backup')) }, ...errors } },
        delete: {
          summary:
            'Delete a backup (and the backups that depend on it) from the repository; 409 when the recovery window would fall below the retention, unless force=true',
          parameters: [{ name: 'force', in: 'query', required: false, schema: { type: 'boolean' } }],
          responses: { '200': { description: 'Expired', content: json(ref('Backup')) }, ...errors },
        },
      },
      '/v1/postgres/instances/{uuid}/restore': {
        parameters: [idParam],
        post: {
          summary:
            'Restore the instance\'s backups to a time, a backup or the latest archived WAL: into a new instance (as_instance, default "<uuid>-restore-<n>") or in place',
          parameters: [idempotency],
          requestBody: {
            required: true,
            content: json({
              type: 'object',
              properties: {
                to_time: { type: 'string', format: 'date-time', description: 'inside the recovery window (ListBackups)' },
                backup_id: { type: 'string' },
                latest: { type: 'boolean' },
                as_instance: { type: 'string' },
                in_place: { type: 'boolean', default: false },
              },
              description: 'exactly one of to_time, backup_id, latest',
            }),
          },
          responses: {
            '202': { description: 'Restore started', content: json({ type: 'object', properties: { instance: ref('Instance'), restore: ref('Restore') } }) },
            ...errors,
          },
        },
      },
      '/v1/postgres/instances/{uuid}/restores/{restore_id}': {
        parameters: [idParam, { name: 'restore_id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'Follow a restore (the instance restored into)',
          responses: { '200': { description: 'The restore', content: json(ref('Restore')) }, ...errors },
        },
      },
      '/v1/types/postgres/versions': {
        get: {
          summary: 'List PostgreSQL versions',
          responses: {
            '200': { description: 'Versions', content: json({ type: 'object', properties: { versions: { type: 'array', items: ref('Version') } } }) },
          },
        },
      },
      '/v1/types/postgres/versions/{uuid}': {
        parameters: [{ name: 'uuid', in: 'path', required: true, schema: { type: 'string' } }],
        get: { summary: 'Get a version', responses: { '200': { description: 'The version', content: json(ref('Version')) }, ...errors } },
      },
      '/v1/fleet': { get: { summary: 'Fleet summary', responses: { '200': { description: 'Counts and problems', content: json({ type: 'object' }) } } } },
      '/v1/routes': { get: { summary: 'The route table', responses: { '200': { description: 'Routes and revision', content: json({ type: 'object' }) } } } },
      '/v1/hosts': {
        get: {
          summary: 'Hosts: state, capacity and what is allocated on them',
          responses: { '200': { description: 'Hosts', content: json({ type: 'object' }) } },
        },
      },
      '/v1/hosts/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: "A host, its drain's progress (drain: moved, moving, blocked tenants with why) and the tenants on it",
          responses: { '200': { description: 'The host', content: json({ type: 'object' }) }, ...errors },
        },
      },
      '/v1/events': {
        get: {
          summary: 'The event log: the newest `limit` (default 100, at most 1000), or those after an id',
          parameters: ['tenant', 'host', 'after', 'limit'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } })),
          responses: { '200': { description: 'Events, oldest first', content: json({ type: 'object' }) } },
        },
      },
      '/v1/events/stream': {
        get: {
          summary: 'Events as they are committed (text/event-stream); `after` or Last-Event-ID replays from an id',
          parameters: ['tenant', 'host', 'after'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } })),
          responses: { '200': { description: 'A server-sent event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
        },
      },
    },
    components: {
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: {
                code: { type: 'string', example: 'INVALID_ARGUMENT' },
                error_code: { type: 'string' },
                message: { type: 'string' },
                field: { type: 'string' },
              },
            },
          },
        },
        InstanceCreate: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', pattern: TENANT_ID_PATTERN, maxLength: MAX_NAME_LENGTH },
            description: { type: 'string', maxLength: 1024 },
            cpu: { type: 'number', minimum: 1, maximum: 128, description: 'cores, fractions allowed' },
            ram: {
              oneOf: [
                { type: 'integer', minimum: 512, maximum: 1048576 },
                { type: 'string', example: '2Gi' },
              ],
              description: 'MB',
            },
            disk_size: {
              oneOf: [
                { type: 'number', minimum: 8, maximum: 1024 },
                { type: 'string', example: '100Gi' },
              ],
              description: 'GB',
            },
            nodes_number: { type: 'integer', minimum: 1, maximum: 16 },
            sync_replica_number: { type: 'integer', minimum: 0, maximum: 15 },
            version: { type: 'string', example: '/v1/types/postgres/versions/15' },
            password: { type: 'string', minLength: 8, maxLength: 99, description: 'owner password; generated and returned once when absent' },
            external_access: { type: 'boolean', default: false },
            connection_limit: { type: 'integer', minimum: 0 },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            placement: { type: 'object', additionalProperties: { type: 'string' } },
            run_state: { type: 'string', enum: ['RUNNING', 'STOPPED'] },
            backup_policy: ref('BackupPolicy'),
          },
        },
        BackupPolicy: {
          type: 'object',
          description: 'seconds; 0 = the fleet default (full weekly, diff daily, no incremental, retention 7 days, archive_timeout 60 s)',
          properties: {
            disabled: { type: 'boolean', default: false },
            full_interval_seconds: { type: 'integer', minimum: 0 },
            diff_interval_seconds: { type: 'integer', minimum: 0 },
            incr_interval_seconds: { type: 'integer', minimum: 0 },
            retention_seconds: { type: 'integer', minimum: 0 },
            archive_timeout_seconds: { type: 'integer', minimum: 0, maximum: 3600 },
          },
        },
        InstanceUpdate: {
          allOf: [ref('InstanceCreate'), { type: 'object', properties: { revision: { type: 'integer', description: 'the revision read (or If-Match)' } } }],
        },
        Instance: {
          type: 'object',
          properties: {
            uuid: { type: 'string' },
            name: { type: 'string' },
            status: {
              type: 'string',
              enum: ['NEW', 'IN_PROGRESS', 'ACTIVE', 'ERROR', 'STOPPING', 'STOPPED', 'UNAVAILABLE', 'SUSPENDED', 'DELETING', 'FAILING_OVER', 'RESTORING'],
            },
            status_reason: { type: 'string' },
            suspended_at: { type: 'string', format: 'date-time', nullable: true, description: 'When a SUSPENDED instance was suspended; null otherwise' },
            revision: { type: 'integer' },
            cpu: { type: 'number' },
            ram: { type: 'integer' },
            disk_size: { type: 'number' },
            nodes_number: { type: 'integer' },
            sync_replica_number: { type: 'integer' },
            version: { type: 'string' },
            external_access: { type: 'boolean' },
            connection_limit: { type: 'integer' },
            backup_policy: ref('BackupPolicy'),
            generated_password: { type: 'string', description: 'only in the create answer, when generated' },
            nodes: { type: 'array', items: { type: 'object' } },
            route: { type: 'object' },
          },
        },
        UserCreate: {
          type: 'object',
          required: ['name', 'password'],
          properties: { name: { type: 'string' }, description: { type: 'string' }, password: { type: 'string', minLength: 8, maxLength: 99 } },
        },
        User: {
          type: 'object',
          properties: {
            uuid: { type: 'string' },
            name: { type: 'string' },
            description: { type: 'string' },
            status: { type: 'string', enum: ['NEW', 'ACTIVE', 'ERROR', 'DELETING'] },
            owner: { type: 'boolean' },
          },
        },
        DatabaseCreate: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string' },
            description: { type: 'string' },
            owner: { type: 'string', description: 'user reference /v1/postgres/instances/{uuid}/users/{name} or a name; default the owner user' },
          },
        },
        Database: { type: 'object', properties: { uuid: { type: 'string' }, name: { type: 'string' }, owner: { type: 'string' }, status: { type: 'string' } } },
        Backup: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            instance: { type: 'string' },
            type: { type: 'string', enum: ['full', 'diff', 'incr'] },
            status: { type: 'string', enum: ['running', 'succeeded', 'failed', 'expired'] },
            reason: { type: 'string' },
            host_id: { type: 'string' },
            label: { type: 'string' },
            prior_label: { type: 'string' },
            started_at: { type: 'string', format: 'date-time' },
            finished_at: { type: 'string', format: 'date-time', nullable: true },
            size_bytes: { type: 'integer' },
            repo_size_bytes: { type: 'integer' },
            lsn_start: { type: 'string' },
            lsn_stop: { type: 'string' },
            timeline: { type: 'integer' },
            trigger: { type: 'string' },
            stanza: { type: 'string' },
          },
        },
        RecoveryWindow: {
          type: 'object',
          nullable: true,
          properties: { earliest: { type: 'string', format: 'date-time' }, latest: { type: 'string', format: 'date-time' } },
        },
        Restore: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            source_instance: { type: 'string' },
            target_instance: { type: 'string' },
            kind: { type: 'string', enum: ['new', 'in_place', 'recreate'] },
            state: { type: 'string', enum: ['running', 'succeeded', 'failed'] },
            reason: { type: 'string' },
            to_time: { type: 'string', format: 'date-time', nullable: true },
            to_backup_id: { type: 'string' },
            latest: { type: 'boolean' },
            in_place: { type: 'boolean' },
            host_id: { type: 'string' },
            started_at: { type: 'string', format: 'date-time' },
            finished_at: { type: 'string', format: 'date-time', nullable: true },
            recovered_lsn: { type: 'string' },
            recovered_time: { type: 'string', format: 'date-time', nullable: true },
            missing_wal_bytes: { type: 'integer' },
            timeline: { type: 'integer' },
          },
        },
        Version: {
          type: 'object',
          properties: {
            uuid: { type: 'string' },
            name: { type: 'string' },
            description: { type: 'string' },
            image: { type: 'string' },
            default: { type: 'boolean', description: 'the major a tenant gets when it names none: the newest fully supported' },
            deprecated: { type: 'boolean' },
            hosts: { type: 'array', items: { type: 'string' }, description: 'hosts that run it' },
            server_versions: { type: 'array', items: { type: 'string' }, example: ['18.4'] },
            replicas_supported: { type: 'boolean', description: 'a host that runs it has its pg_basebackup' },
            backups_supported: { type: 'boolean', description: "the hosts' pgBackRest backs it up" },
            limitations: { type: 'string', description: 'why replicas or backups are not supported' },
            created_at: { type: 'string' },
            updated_at: { type: 'string' },
          },
        },
      },
    },
  };
}

/**
 * A small in-memory CoordinatorService on a real gRPC server (127.0.0.1, free port), for testing
 * pgsctl's command tree, output and exit codes without the whole coordinator. Tenants become
 * ACTIVE on h1 a moment after creation, like a fleet with one quick host.
 */
import { create } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import {
  CoordinatorService,
  HostState,
  InstanceRole,
  Realization,
  RouteState,
  TenantSchema,
  TenantStatus,
  type Tenant,
  type TenantUser,
} from '@pgs/proto';
import { addService, Code, RpcError, type ServiceImpl } from '@pgs/rpc';

/** A running fake coordinator. */
export interface FakeCoordinator {
  address: string;
  stop(): Promise<void>;
}

/** Starts the fake; `activateAfterMs` is how long a new tenant stays IN_PROGRESS. */
export async function startFakeCoordinator(activateAfterMs = 300): Promise<FakeCoordinator> {
  const tenants = new Map<string, Tenant>();
  const users = new Map<string, TenantUser[]>();
  const timers = new Set<NodeJS.Timeout>();
  const need = (id: string): Tenant => {
    const t = tenants.get(id);
    if (t === undefined) throw new RpcError(Code.NOT_FOUND, `tenant ${id} not found`, { errorCode: 'TENANT_NOT_FOUND' });
    return t;
  };
  const unimplemented = async (): Promise<never> => {
    throw new RpcError(Code.UNIMPLEMENTED, 'not in the fake');
  };
  const impl: Partial<ServiceImpl<typeof CoordinatorService>> = {
    async createTenant(req) {
      if (tenants.has(req.id)) throw new RpcError(Code.ALREADY_EXISTS, `tenant ${req.id} already exists`, { errorCode: 'TENANT_EXISTS' });
      const tenant = create(TenantSchema, { id: req.id, spec: req.spec, revision: 1n, status: TenantStatus.IN_PROGRESS, createdAt: timestampNow(), updatedAt: timestampNow(),
        placements: [{ hostId: 'h1', role: InstanceRole.PRIMARY, realization: Realization.PENDING, address: '127.0.0.11' }] });
      tenants.set(req.id, tenant);
      users.set(req.id, [{ $typeName: 'pgs.common.v1.TenantUser', tenantId: req.id, name: req.id, description: '', status: 2, statusReason: '', owner: true }]);
      const timer = setTimeout(() => {
        timers.delete(timer);
        tenant.status = TenantStatus.ACTIVE;
        const p = tenant.placements[0];
        if (p) Object.assign(p, { realization: Realization.REALIZED, port: 20001 });
      }, activateAfterMs);
      timers.add(timer);
      return { tenant, generatedPassword: req.ownerPassword ? '' : 'generated-pw-123' };
    },
    async getTenant(req) {
      const tenant = need(req.id);
      return { tenant, users: users.get(req.id) ?? [], databases: [], recentEvents: [],
        route: { tenantId: req.id, hostId: 'h1', address: '127.0.0.11', port: 20001, state: RouteState.ROUTABLE, externalAccess: tenant.spec?.externalAccess ?? false, revision: 3n } };
    },
    async listTenants(req) {
      return { tenants: [...tenants.values()].filter((t) => req.status === TenantStatus.UNSPECIFIED || t.status === req.status), page: { nextPageToken: '', totalSize: tenants.size } };
    },
    async updateTenant(req) {
      const tenant = need(req.id);
      if (req.revision !== tenant.revision) throw new RpcError(Code.ABORTED, `stale revision: the write is based on revision ${req.revision} but the current revision is ${tenant.revision}; read again and retry`);
      tenant.spec = req.spec;
      tenant.revision += 1n;
      return { tenant };
    },
    async deleteTenant(req) {
      const tenant = need(req.id);
      tenants.delete(req.id);
      return { tenant };
    },
    async setTenantAccess(req) {
      const tenant = need(req.id);
      if (tenant.spec) tenant.spec.externalAccess = req.externalAccess;
      return { tenant };
    },
    async listHosts() {
      return { hosts: [{ id: 'h1', address: '127.0.0.11', state: HostState.READY, capacity: { cpuMillis: 8000, memoryMib: 16384, diskMib: 102400 },
        allocated: { cpuMillis: 1000, memoryMib: 1024, diskMib: 8192, instances: tenants.size }, lastHeartbeatAt: timestampNow(), runtime: 'process' }] };
    },
    async getFleetStatus() {
      return { hostsByState: { READY: 1 }, tenantsByStatus: { ACTIVE: tenants.size }, routersConnected: 2, agentsConnected: 1, routeRevision: 3n, problems: [] };
    },
  };
  const full = Object.fromEntries(CoordinatorService.methods.map((m) => [m.localName, (impl as Record<string, unknown>)[m.localName] ?? unimplemented]));
  const server = new Server();
  addService(server, CoordinatorService, full as ServiceImpl<typeof CoordinatorService>);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.tryShutdown(() => resolve());
      }),
  };
}

/**
 * --insecure only: agents and routers that do not name themselves in `pgs-identity` metadata (older
 * builds, or ones started without TLS support) are taken to be who their first message says: the
 * Hello's host id, the WatchRoutes router id. Without TLS a claim in metadata proves nothing either,
 * so this adds no trust that --insecure did not already give away (and its warning says so); with
 * TLS on this wrapper is never installed and only a certificate names a component.
 */
import type { AgentControlService, ConnectRequest, RouteFeedService } from '@pgs/proto';
import type { CallContext, ServiceImpl } from '@pgs/rpc';
import { IDENTITY_CLAIM_HEADER } from '@pgs/security';

function claim(ctx: CallContext, value: string): void {
  if (ctx.metadata.get(IDENTITY_CLAIM_HEADER).length === 0) ctx.metadata.set(IDENTITY_CLAIM_HEADER, value);
}

/** AgentControlService for an --insecure coordinator: an unclaimed stream claims its Hello's host id. */
export function claimFromHello(impl: ServiceImpl<typeof AgentControlService>): ServiceImpl<typeof AgentControlService> {
  return {
    async connect(requests, stream, ctx) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done) return;
      const hello = first.value.message.case === 'hello' ? first.value.message.value : undefined;
      if (hello?.hostId) claim(ctx, `host:${hello.hostId}`);
      // Hand the handler the whole stream again, first message included.
      const replay: AsyncIterable<ConnectRequest> = {
        [Symbol.asyncIterator]: () => {
          let sentFirst = false;
          return {
            next: async () => {
              if (!sentFirst) {
                sentFirst = true;
                return first;
              }
              return iterator.next();
            },
          };
        },
      };
      return impl.connect(replay, stream, ctx);
    },
  };
}

/** RouteFeedService for an --insecure coordinator: an unclaimed watch claims its request's router id. */
export function claimFromWatch(impl: ServiceImpl<typeof RouteFeedService>): ServiceImpl<typeof RouteFeedService> {
  return {
    async watchRoutes(request, stream, ctx) {
      if (request.routerId) claim(ctx, `router:${request.routerId}`);
      return impl.watchRoutes(request, stream, ctx);
    },
    async reportClients(request, ctx) {
      if (request.routerId) claim(ctx, `router:${request.routerId}`);
      return impl.reportClients(request, ctx);
    },
    async wakeTenant(request, ctx) {
      if (request.routerId) claim(ctx, `router:${request.routerId}`);
      return impl.wakeTenant(request, ctx);
    },
    async reportBackendFailures(request, ctx) {
      if (request.routerId) claim(ctx, `router:${request.routerId}`);
      return impl.reportBackendFailures(request, ctx);
    },
  };
}

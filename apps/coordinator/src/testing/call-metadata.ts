/** Test clients of an --insecure coordinator: every call carries given metadata (a bearer token, an identity claim). */
import { InterceptingCall, type ChannelOptions, type Interceptor, type Metadata } from '@grpc/grpc-js';

/** Channel options whose interceptor adds `md` to every call (grpc-js refuses call credentials on plaintext). */
export function withCallMetadata(md: Metadata): ChannelOptions {
  const interceptor: Interceptor = (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.merge(md);
        next(metadata, listener);
      },
    });
  // grpc-js' Client takes `interceptors` beside the channel options; @pgs/rpc passes them through.
  return { interceptors: [interceptor] } as ChannelOptions;
}

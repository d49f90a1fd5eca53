/**
 * How pgsctl authenticates to the coordinator, resolved once per run: TLS checked
 * against the fleet CA, and an operator bearer token on every call. The token comes from --token,
 * PGS_TOKEN, --token-file, PGS_TOKEN_FILE, the user's config file (token / tokenFile) or the local
 * fleet's admin token file; the CA from --ca, PGS_CA, the config file (ca) or the local fleet.
 * --insecure (or an --insecure local fleet) uses plaintext and sends the token as call metadata.
 */
import fs from 'node:fs';
import { credentials, InterceptingCall, Metadata, type ChannelCredentials, type ChannelOptions, type Interceptor } from '@grpc/grpc-js';
import { tlsChannelCredentials, withBearerToken } from '@pgs/security';
import { UsageError } from './errors.js';
import { findLocalFleet, readUserConfig, userConfigPath, type SettingsEnv } from './settings.js';

/** The security flags pgsctl accepts. */
export interface AuthFlags {
  token?: string;
  tokenFile?: string;
  ca?: string;
  insecure?: boolean;
}

/** What a client is made with, and where each part came from (for `config view` and hints). */
export interface CoordinatorAuth {
  credentials: ChannelCredentials;
  channelOptions: ChannelOptions;
  tokenSource: string;
  caSource: string;
}

function readSecretFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/** The operator token and where it came from; undefined when none is configured. */
export function resolveToken(flags: AuthFlags, where: SettingsEnv): { token: string; source: string } | undefined {
  if (flags.token) return { token: flags.token, source: '--token' };
  if (where.env.PGS_TOKEN) return { token: where.env.PGS_TOKEN, source: 'PGS_TOKEN' };
  if (flags.tokenFile) return { token: readSecretFile(flags.tokenFile, 'token file'), source: flags.tokenFile };
  if (where.env.PGS_TOKEN_FILE) return { token: readSecretFile(where.env.PGS_TOKEN_FILE, 'token file'), source: where.env.PGS_TOKEN_FILE };
  const config = readUserConfig(where);
  if (config?.token) return { token: config.token, source: userConfigPath(where) };
  if (config?.tokenFile) return { token: readSecretFile(config.tokenFile, 'token file'), source: config.tokenFile };
  const fleet = findLocalFleet(where.cwd);
  if (fleet?.tokenFile) return { token: readSecretFile(fleet.tokenFile, 'token file'), source: fleet.tokenFile };
  return undefined;
}

/** Channel options whose interceptor adds `md` to every call (grpc-js refuses call credentials on plaintext). */
function withCallMetadata(md: Metadata): ChannelOptions {
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

/** Resolves token, CA and transport. Throws UsageError when TLS is on but no CA is known. */
export function resolveCoordinatorAuth(flags: AuthFlags, where: SettingsEnv): CoordinatorAuth {
  const token = resolveToken(flags, where);
  const fleet = findLocalFleet(where.cwd);
  const insecure =
    flags.insecure === true || /^(1|true|yes)$/i.test(where.env.PGS_INSECURE ?? '') || (fleet?.insecure === true && !flags.ca && !where.env.PGS_CA);
  const tokenSource = token?.source ?? 'none';
  if (insecure) {
    const md = new Metadata();
    if (token) md.set('authorization', `Bearer ${token.token}`);
    return { credentials: credentials.createInsecure(), channelOptions: token ? withCallMetadata(md) : {}, tokenSource, caSource: '--insecure (plaintext)' };
  }
  const caFile = flags.ca || where.env.PGS_CA || readUserConfig(where)?.ca || fleet?.coordinatorCa;
  const caSource = flags.ca
    ? '--ca'
    : where.env.PGS_CA
      ? 'PGS_CA'
      : readUserConfig(where)?.ca
        ? userConfigPath(where)
        : fleet?.coordinatorCa
          ? fleet.file
          : 'none';
  if (!caFile) {
    throw new UsageError("no CA to check the coordinator's TLS certificate with", {
      hint: 'give --ca <file> or PGS_CA (the coordinator writes ca.pem into its data dir), run inside a local fleet checkout, or use --insecure against an --insecure coordinator',
    });
  }
  const tls = tlsChannelCredentials(readSecretFile(caFile, 'CA file'));
  return { credentials: token ? withBearerToken(tls, token.token) : tls, channelOptions: {}, tokenSource, caSource };
}

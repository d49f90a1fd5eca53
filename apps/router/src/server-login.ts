// How the pooled server connections of one pool key log in, one object per key for all of its
// clients. Every client of a key proved the same verifier (the key holds its StoredKey), so the
// ClientKey their proofs revealed is the same (StoredKey = SHA-256(ClientKey)), and so are the
// startup parameters the server is sent (the key holds them), application_name aside, which is
// each login's own. Thousands of idle transaction-mode clients of one key then hold one login, not
// one closure, startup packet and ClientKey each.
import type { ScramVerifierParts } from '@pgs/security';
import { encodeStartupMessage } from '@pgs/wire-protocol';
import type { BackendConnectOptions } from './backend-connect.js';
import { loginBackend, type LoginResult } from './backend-login.js';
import { refuse } from './refusal.js';
import { checkRoutable } from './routing.js';

/** What a login needs besides the key's own parts. */
export interface ServerLoginOptions {
  connect: BackendConnectOptions;
  /** Deadline for a server login, connect excluded. */
  timeoutMs: number;
}

/** The login of one pool key's server connections. */
export class ServerLogin {
  readonly #o: ServerLoginOptions;
  readonly #tenantId: string;
  readonly #protocol: { major: number; minor: number };
  /** The startup parameters sent to the server but application_name. */
  readonly #parameters: ReadonlyMap<string, string>;
  /** In memory only, for as long as a client of the key stays (new server logins). */
  readonly #clientKey: Buffer;
  readonly #verifier: ScramVerifierParts;

  constructor(
    o: ServerLoginOptions,
    tenantId: string,
    protocol: { major: number; minor: number },
    parameters: ReadonlyMap<string, string>,
    clientKey: Buffer,
    verifier: ScramVerifierParts,
  ) {
    this.#o = o;
    this.#tenantId = tenantId;
    this.#protocol = protocol;
    const own = new Map(parameters);
    own.delete('application_name');
    this.#parameters = own;
    // Its own memory, not a slice of a shared pool's slab that it would keep alive.
    this.#clientKey = Buffer.allocUnsafeSlow(clientKey.length);
    clientKey.copy(this.#clientKey);
    this.#verifier = verifier;
  }

  /**
   * A new server connection logged in for a client named `applicationName`. It goes where the
   * tenant is now: a client outlives switchovers and failovers, and the route it was routed by
   * may name the old primary. Throws RouterRefusal when the tenant is gone or not routable.
   */
  login(applicationName: string): Promise<LoginResult> {
    const now = this.#o.connect.lookup(this.#tenantId);
    if (!now) throw refuse.unknownTenant(this.#tenantId, false);
    checkRoutable(now);
    const parameters = new Map(this.#parameters);
    if (applicationName !== '') parameters.set('application_name', applicationName);
    const startup = encodeStartupMessage({ protocol: this.#protocol, parameters });
    return loginBackend(now, startup, applicationName, this.#clientKey, this.#verifier, { connect: this.#o.connect, timeoutMs: this.#o.timeoutMs });
  }
}

/**
 * The logins of the keys that have clients now: a key's login lives as long as one of its clients
 * holds it and is forgotten after (a weak reference per key, cleared when collected).
 */
export class ServerLogins {
  readonly #byKey = new Map<string, WeakRef<ServerLogin>>();
  readonly #collected = new FinalizationRegistry<string>((key) => {
    if (this.#byKey.get(key)?.deref() === undefined) this.#byKey.delete(key);
  });

  /** The key's login, made by `make` when no client of the key holds one. */
  of(key: string, make: () => ServerLogin): ServerLogin {
    let login = this.#byKey.get(key)?.deref();
    if (!login) {
      login = make();
      this.#byKey.set(key, new WeakRef(login));
      this.#collected.register(login, key);
    }
    return login;
  }

  /** Keys with a login in the map (some may be collected and not yet cleared); for tests. */
  get size(): number {
    return this.#byKey.size;
  }
}

import { describe, expect, it } from 'vitest';
import { connectInfo } from './connect.js';

describe('connect strings', () => {
  const base = { tenant: 'acme', status: 'ACTIVE', externalAccess: true, router: '127.0.0.1:5432', database: 'acme' };

  it('connects the owner by its own name and other users as user.tenant', () => {
    expect(connectInfo({ ...base, user: 'acme' }).uri).toBe('postgresql://acme@127.0.0.1:5432/acme?sslmode=require');
    expect(connectInfo({ ...base, user: 'app' }).psql).toBe('psql "postgresql://app.acme@127.0.0.1:5432/acme?sslmode=require"');
  });

  it('adds verify-full with the CA and the SNI form when they are known', () => {
    const info = connectInfo({ ...base, user: 'app', caPath: '/repo/.pgs/local/ca.crt', sniDomain: 'pgs.localhost' });
    expect(info.uriVerifyFull).toBe('postgresql://app.acme@127.0.0.1:5432/acme?sslmode=verify-full&sslrootcert=/repo/.pgs/local/ca.crt');
    // SNI names the tenant, so the user goes unsuffixed; hostaddr avoids needing DNS for *.pgs.localhost.
    expect(info.sniConninfo).toBe(
      'host=acme.pgs.localhost hostaddr=127.0.0.1 port=5432 user=app dbname=acme sslmode=verify-full sslrootcert=/repo/.pgs/local/ca.crt',
    );
    expect(connectInfo({ ...base, user: 'acme' }).sniConninfo).toBeNull();
  });
});

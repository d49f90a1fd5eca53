import { create } from '@bufbuild/protobuf';
import { GetFleetStatusResponseSchema } from '@pgs/proto';
import { describe, expect, it } from 'vitest';
import { fleetStatusView } from '../views.js';
import { renderStatus } from './status.js';

describe('pgsctl status', () => {
  it('lists problems first, backup ones as readable as the rest, and RESTORING with the other statuses', () => {
    const view = fleetStatusView(
      create(GetFleetStatusResponseSchema, {
        hostsByState: { READY: 2 },
        tenantsByStatus: { ACTIVE: 3, RESTORING: 1 },
        problems: [
          'host h3 DOWN since 2026-12-06T09:00:00.000Z',
          'tenant acme: last good backup is 9 days old; the policy wants one every 7 days',
          'tenant shop: WAL archiving failing for 20m (3 segments, 48 MiB waiting on h1)',
        ],
      }),
    );
    const text = renderStatus(view, '127.0.0.1:7400');
    expect(text).toContain(
      'Problems (3):\n' +
        '  ! host h3 DOWN since 2026-12-06T09:00:00.000Z\n' +
        '  ! tenant acme: last good backup is 9 days old; the policy wants one every 7 days\n' +
        '  ! tenant shop: WAL archiving failing for 20m (3 segments, 48 MiB waiting on h1)\n\n',
    );
    expect(text).toMatch(/^Tenants:\s+4: 1 RESTORING, 3 ACTIVE$/m);
  });
});

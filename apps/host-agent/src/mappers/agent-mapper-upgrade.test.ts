// The upgrade commands across the agent's proto edge: every step maps to its action, an unknown
// step is an unknown command (never a default step), and results go back whole.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { CommandResultSchema, CommandSchema, UpgradeSource_Step, UpgradeTarget_Step } from '@pgs/proto';
import { fromCommand, toCommandResult } from './agent-mapper.js';

describe('upgrade commands', () => {
  it('maps every source step, with its role list and verifier', () => {
    const steps = [
      [UpgradeSource_Step.INSPECT, 'inspect'],
      [UpgradeSource_Step.PREPARE, 'prepare'],
      [UpgradeSource_Step.BLOCK_WRITERS, 'blockWriters'],
      [UpgradeSource_Step.UNBLOCK_WRITERS, 'unblockWriters'],
      [UpgradeSource_Step.CLEAN, 'clean'],
    ] as const;
    for (const [step, kind] of steps) {
      const c = create(CommandSchema, {
        commandId: 'c1',
        tenantId: 'acme',
        action: {
          case: 'upgradeSource',
          value: { step, user: 'pgs_upgrade', scramVerifier: 'v', replicaIdentityFull: true, roles: ['alice'], databases: ['app'] },
        },
      });
      expect(fromCommand(fromBinary(CommandSchema, toBinary(CommandSchema, c))).action).toEqual({
        kind: 'upgradeSource',
        step: kind,
        user: 'pgs_upgrade',
        scramVerifier: 'v',
        replicaIdentityFull: true,
        roles: ['alice'],
        databases: ['app'],
      });
    }
  });

  it('maps every target step with where the source is', () => {
    for (const [step, kind] of [
      [UpgradeTarget_Step.SUBSCRIBE, 'subscribe'],
      [UpgradeTarget_Step.SYNC_STATE, 'syncState'],
      [UpgradeTarget_Step.CATCH_UP, 'catchUp'],
      [UpgradeTarget_Step.ABANDON, 'abandon'],
    ] as const) {
      const c = create(CommandSchema, {
        commandId: 'c2',
        tenantId: 'acme',
        action: {
          case: 'upgradeTarget',
          value: {
            step,
            sourceAddress: '127.0.0.11',
            sourcePort: 20001,
            user: 'pgs_upgrade',
            password: 'pw',
            databases: ['app', 'postgres'],
            dumpMajor: '15',
            timeoutMs: 5000,
          },
        },
      });
      expect(fromCommand(c).action).toEqual({
        kind: 'upgradeTarget',
        step: kind,
        source: { address: '127.0.0.11', port: 20001, user: 'pgs_upgrade', password: 'pw' },
        databases: ['app', 'postgres'],
        dumpMajor: '15',
        timeoutMs: 5000,
      });
    }
  });

  it('answers an unspecified step as an unknown command', () => {
    expect(fromCommand(create(CommandSchema, { commandId: 'c3', tenantId: 'acme', action: { case: 'upgradeSource', value: {} } })).action).toBeUndefined();
    expect(fromCommand(create(CommandSchema, { commandId: 'c4', tenantId: 'acme', action: { case: 'upgradeTarget', value: {} } })).action).toBeUndefined();
  });

  it('sends the results back', () => {
    const r = create(
      CommandResultSchema,
      toCommandResult({
        commandId: 'c1',
        ok: true,
        errorCode: '',
        message: '',
        lsn: '',
        timeline: 0,
        upgradeSource: {
          major: 15,
          walLevel: 'logical',
          largeObjects: ['app: 1'],
          unloggedTables: ['app: public.t'],
          tablesWithoutIdentity: [],
          databases: ['app'],
          sessionsEnded: 2,
          identityFullSet: [],
        },
        upgradeTarget: { tables: 3, ready: 2, sourceLsn: '0/1A', sequences: 1 },
      }),
    );
    expect(r.upgradeSource).toMatchObject({
      major: 15,
      walLevel: 'logical',
      largeObjects: ['app: 1'],
      unloggedTables: ['app: public.t'],
      databases: ['app'],
      sessionsEnded: 2,
    });
    expect(r.upgradeTarget).toMatchObject({ tables: 3, ready: 2, sourceLsn: '0/1A', sequences: 1 });
  });
});

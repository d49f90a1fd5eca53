/** Plans as people read them (`+` create, `~` change, `-` remove, like a diff) and as scripts do (-o json). */
import { describeSource } from './model.js';
import { planChanges, type TenantPlan } from './plan.js';

/** One tenant's plan as text lines. */
export function renderPlan(plan: TenantPlan): string {
  const where = describeSource(plan.source);
  const head =
    plan.action === 'create'
      ? `tenant ${plan.name}: create (${where})`
      : `tenant ${plan.name}: ${planChanges(plan) ? `update from revision ${plan.revision}` : 'unchanged'} (${where})`;
  const lines = [head];
  const sign = plan.action === 'create' ? '+' : '~';
  for (const c of plan.changes) lines.push(plan.action === 'create' ? `  + ${c.path}: ${c.to}` : `  ${sign} ${c.path}: ${c.from} -> ${c.to}`);
  for (const u of plan.createUsers)
    lines.push(`  + user ${u.name} (password from ${'fromEnv' in u.password ? `$${u.password.fromEnv}` : u.password.fromFile})`);
  for (const d of plan.createDatabases) lines.push(`  + database ${d.name} (owner ${d.owner})`);
  for (const script of plan.initScripts) lines.push(`  + init script ${script} (runs once, after the users and databases)`);
  for (const name of plan.deleteUsers) lines.push(`  - user ${name} (--prune)`);
  for (const name of plan.deleteDatabases) lines.push(`  - database ${name} (--prune)`);
  for (const p of plan.problems) lines.push(`  ! ${p}`);
  for (const n of plan.notes) lines.push(`  note: ${n}`);
  return `${lines.join('\n')}\n`;
}

/** Plans and tenants to prune as text, with a closing count. */
export function renderPlans(plans: readonly TenantPlan[], prune: readonly string[]): string {
  const body = plans.map(renderPlan).join('');
  const pruned = prune.map((id) => `tenant ${id}: delete (not in the manifests; --prune)\n`).join('');
  const changing = plans.filter(planChanges).length + prune.length;
  const summary = changing === 0 ? 'no changes: everything is as the manifests say\n' : `${changing} tenant(s) to change\n`;
  return `${body}${pruned}${summary}`;
}

/** The plans for -o json / yaml (passwords are never in them: only where they come from). */
export function planDocument(plans: readonly TenantPlan[], prune: readonly string[]): unknown {
  return {
    changes: plans.filter(planChanges).length + prune.length,
    tenants: plans.map((p) => ({
      name: p.name,
      file: p.source.file,
      document: p.source.document,
      action: planChanges(p) && p.action === 'unchanged' ? 'update' : p.action,
      revision: p.revision,
      fields: p.changes,
      createUsers: p.createUsers.map((u) => u.name),
      deleteUsers: p.deleteUsers,
      createDatabases: p.createDatabases.map((d) => ({ name: d.name, owner: d.owner })),
      deleteDatabases: p.deleteDatabases,
      initScripts: p.initScripts,
      problems: p.problems,
      notes: p.notes,
    })),
    deleteTenants: prune,
  };
}

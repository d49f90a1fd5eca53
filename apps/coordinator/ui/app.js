// The fleet dashboard: signs in with an operator token (session storage), reads the REST API with
// it, follows /v1/events/stream and refreshes the tenant and host rows an event names. The DOM is
// built with textContent only (no HTML from data), so a tenant's description cannot inject markup.

const TOKEN_KEY = 'pgs.token';
const MAX_EVENTS = 200;
const $ = (id) => document.getElementById(id);

const state = {
  tenants: new Map(),
  hosts: [],
  lastEventId: 0,
  stream: undefined,
  route: { view: 'fleet', id: '' },
};

/** A refused token: the page goes back to sign-in with this message. */
class SignedOut extends Error {}

/** An element with attributes and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${token()}` }, cache: 'no-store' });
  if (res.status === 401) {
    const body = await res.json().catch(() => ({}));
    throw new SignedOut(body?.error?.message ?? 'the token was refused');
  }
  const body = res.status === 204 ? undefined : await res.json().catch(() => undefined);
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

/** Back to sign-in; focus moves to the token field when a session ended, not on first load. */
function signOut(message, focus = true) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.stream?.abort();
  state.stream = undefined;
  state.tenants.clear();
  $('login-error').textContent = message ?? '';
  setLive('off', 'Not connected');
  show('login');
  $('token').value = '';
  if (focus) $('token').focus();
}

/** Shows one of: login, fleet, tenant. */
function show(view) {
  $('login').hidden = view !== 'login';
  $('fleet-view').hidden = view !== 'fleet';
  $('tenant-view').hidden = view !== 'tenant';
  $('events-section').hidden = view === 'login';
  $('logout').hidden = view === 'login';
}

function setLive(s, text) {
  $('live').dataset.state = s;
  $('live').textContent = text;
}

// ---- formatting -------------------------------------------------------------------------------

const GOOD = new Set(['ACTIVE', 'READY', 'REALIZED', 'ROUTABLE', 'SUCCESS', 'RUNNING', 'DONE', 'OK', 'SUCCEEDED', 'COMPLETE', 'COMPLETED']);
const BAD = new Set(['ERROR', 'FAILED', 'FAILURE', 'DOWN', 'UNAVAILABLE', 'HOST_DOWN', 'REFUSED']);

function badge(text) {
  const t = String(text ?? '—').toUpperCase();
  return h('span', { class: `badge ${GOOD.has(t) ? 'good' : BAD.has(t) ? 'bad' : 'warn'}` }, t);
}

function age(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h ago`;
}

function bytes(n) {
  if (!Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function usage(used, total, label) {
  return h(
    'td',
    {},
    `${used} / ${total}`,
    ' ',
    h('meter', { min: 0, max: total || 1, value: used, high: total * 0.85, 'aria-label': `${label}: ${used} of ${total}` }),
  );
}

// ---- fleet view -------------------------------------------------------------------------------

async function loadSummary() {
  const dl = $('summary');
  try {
    const f = await api('/v1/fleet');
    const counts = (o) =>
      Object.entries(o ?? {})
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none';
    const add = (k, v) => dl.append(h('dt', {}, k), h('dd', {}, v));
    dl.replaceChildren();
    add('Hosts', counts(f.hostsByState));
    add('Tenants', counts(f.tenantsByStatus));
    add('Agents connected', String(f.agentsConnected));
    add('Routers connected', String(f.routersConnected));
    add(
      'Allocated',
      `${f.allocated.cpuMillis / 1000} of ${f.capacity.cpuMillis / 1000} CPU, ${f.allocated.memoryMib} of ${f.capacity.memoryMib} MB, ${f.allocated.instances} instance(s)`,
    );
    add('Problems', f.problems.length ? h('ul', {}, ...f.problems.map((p) => h('li', { class: 'bad' }, p))) : 'none');
  } catch (err) {
    if (err instanceof SignedOut) throw err;
    dl.replaceChildren(h('dt', {}, 'Summary'), h('dd', {}, `not shown: ${err.message}`));
  }
}

async function loadHosts() {
  const body = $('hosts').tBodies[0];
  try {
    state.hosts = (await api('/v1/hosts')).hosts;
    $('hosts-note').hidden = state.hosts.length > 0;
    $('hosts-note').textContent = 'No host has registered yet: start a host agent (see the README).';
  } catch (err) {
    if (err instanceof SignedOut) throw err;
    state.hosts = [];
    $('hosts-note').hidden = false;
    $('hosts-note').textContent = `Hosts are not shown: ${err.message}`;
  }
  body.replaceChildren(
    ...state.hosts.map((x) =>
      h(
        'tr',
        { 'data-host': x.id },
        h('th', { scope: 'row' }, x.id, h('span', { class: 'small' }, x.address)),
        h(
          'td',
          {},
          badge(x.state),
          x.cordoned ? h('span', { class: 'small' }, 'cordoned') : null,
          x.draining ? h('span', { class: 'small' }, 'draining') : null,
          x.connected ? null : h('span', { class: 'small' }, 'agent not connected'),
        ),
        usage(x.allocated.cpu, x.capacity.cpu, 'CPU cores'),
        usage(x.allocated.ram, x.capacity.ram, 'Memory MB'),
        usage(x.allocated.disk_size, x.capacity.disk_size, 'Disk GB'),
        h('td', {}, String(x.allocated.instances), x.ready_spares === null ? null : h('span', { class: 'small' }, `${x.ready_spares} spares ready`)),
        h('td', {}, age(x.last_heartbeat_at)),
      ),
    ),
  );
}

async function loadRouters() {
  try {
    const r = await api('/v1/routes');
    const routers = r.routers ?? [];
    $('routers').replaceChildren(...routers.map((x) => h('li', {}, x.id, x.cancel_address ? ` (cancel requests at ${x.cancel_address})` : '')));
    $('routers-note').textContent = `${routers.length} router(s) following route revision ${r.revision}; ${r.routes.length} route(s).`;
  } catch (err) {
    if (err instanceof SignedOut) throw err;
    $('routers-note').textContent = `Routers are not shown: ${err.message}`;
  }
}

function backupCell(t) {
  const b = t.backup_state;
  if (!b) return h('td', {}, h('span', { class: 'small' }, 'no backup state'));
  const archive =
    b.archive_failures > 0
      ? h('span', { class: 'small bad' }, `archive failing (${b.archive_failures})`)
      : h('span', { class: 'small' }, `archive lag ${b.archive_lag_seconds}s`);
  return h(
    'td',
    {},
    b.last_good_backup_at ? `last good ${age(b.last_good_backup_at)}` : h('span', { class: 'bad' }, 'no good backup'),
    archive,
    ...b.problems.map((p) => h('span', { class: 'small bad' }, p)),
  );
}

function hasProblem(t) {
  return (
    BAD.has(t.status) ||
    (t.backup_state?.problems?.length ?? 0) > 0 ||
    t.nodes.some((n) => n.status === 'FAILED') ||
    (t.route && t.route.state !== 'ROUTABLE' && t.status === 'ACTIVE')
  );
}

function tenantRow(t) {
  return h(
    'tr',
    { 'data-tenant': t.uuid },
    h(
      'th',
      { scope: 'row' },
      h('a', { href: `#/tenant/${encodeURIComponent(t.uuid)}` }, t.name),
      t.description ? h('span', { class: 'small' }, t.description) : null,
    ),
    h('td', {}, badge(t.status), t.status_reason ? h('span', { class: 'small' }, t.status_reason) : null),
    h(
      'td',
      {},
      t.nodes.length
        ? t.nodes.map((n) => h('span', { class: 'small' }, `${n.role.toLowerCase()} on ${n.host}: ${n.status}`))
        : h('span', { class: 'small' }, 'not placed'),
    ),
    h(
      'td',
      {},
      t.route
        ? [badge(t.route.state), t.route.address ? h('span', { class: 'small' }, `${t.route.address}:${t.route.port}`) : null]
        : h('span', { class: 'small' }, 'no route'),
    ),
    backupCell(t),
    h(
      'td',
      {},
      `${t.cpu} CPU, ${t.ram} MB, ${t.disk_size} GB`,
      h('span', { class: 'small' }, `${t.nodes_number} node(s), PostgreSQL ${t.version.split('/').pop()}`),
    ),
  );
}

function renderTenants() {
  const q = $('search').value.trim().toLowerCase();
  const status = $('status-filter').value;
  const problems = $('problems-filter').checked;
  const all = [...state.tenants.values()].sort((a, b) => a.name.localeCompare(b.name));
  const shown = all.filter((t) => {
    if (status && t.status !== status) return false;
    if (problems && !hasProblem(t)) return false;
    if (!q) return true;
    const hay = [t.name, t.description, ...Object.entries(t.labels ?? {}).map(([k, v]) => `${k}=${v}`), ...t.nodes.map((n) => n.host)].join(' ').toLowerCase();
    return hay.includes(q);
  });
  $('tenants').tBodies[0].replaceChildren(...shown.map(tenantRow));
  $('tenants-count').textContent = `${shown.length} of ${all.length} tenant(s) shown.`;
  const select = $('status-filter');
  const statuses = [...new Set(all.map((t) => t.status))].sort();
  const have = [...select.options].slice(1).map((o) => o.value);
  if (statuses.join() !== have.join()) {
    select.replaceChildren(h('option', { value: '' }, 'All statuses'), ...statuses.map((s) => h('option', { value: s }, s)));
    select.value = statuses.includes(status) ? status : '';
  }
}

async function loadTenants() {
  const list = (await api('/v1/postgres/instances')).instances;
  state.tenants = new Map(list.map((t) => [t.uuid, t]));
  renderTenants();
}

async function refreshTenant(id) {
  try {
    state.tenants.set(id, await api(`/v1/postgres/instances/${encodeURIComponent(id)}`));
  } catch (err) {
    if (err instanceof SignedOut) throw err;
    if (err.status === 404 || err.status === 403) state.tenants.delete(id);
    else throw err;
  }
  renderTenants();
}

// ---- tenant view ------------------------------------------------------------------------------

function rows(tbody, items, cells) {
  tbody.replaceChildren(
    ...(items.length
      ? items.map((x) => h('tr', {}, ...cells(x).map((c, i) => h(i ? 'td' : 'th', i ? {} : { scope: 'row' }, c))))
      : [h('tr', {}, h('td', { colspan: tbody.parentElement.tHead.rows[0].cells.length }, 'none'))]),
  );
}

async function part(path, fallback) {
  try {
    return { value: await api(path) };
  } catch (err) {
    if (err instanceof SignedOut) throw err;
    return { value: fallback, error: err.message };
  }
}

async function loadTenantPage(id, focus) {
  const enc = encodeURIComponent(id);
  $('tenant-title').textContent = `Tenant ${id}`;
  const [inst, users, dbs, backups, events] = await Promise.all([
    part(`/v1/postgres/instances/${enc}`, undefined),
    part(`/v1/postgres/instances/${enc}/users`, { users: [] }),
    part(`/v1/postgres/instances/${enc}/databases`, { databases: [] }),
    part(`/v1/postgres/instances/${enc}/backups`, { backups: [], window: null }),
    part(`/v1/events?tenant=${enc}&limit=50`, { events: [] }),
  ]);
  if (state.route.view !== 'tenant' || state.route.id !== id) return;
  $('tenant-note').textContent = inst.error ? `This tenant cannot be shown: ${inst.error}` : '';
  const t = inst.value;
  const spec = $('tenant-spec');
  spec.replaceChildren();
  if (t) {
    const add = (k, v) => spec.append(h('dt', {}, k), h('dd', {}, v));
    add('Status', [badge(t.status), t.status_reason ? ` ${t.status_reason}` : '']);
    add('Description', t.description || '—');
    add('Resources', `${t.cpu} CPU, ${t.ram} MB memory, ${t.disk_size} GB disk`);
    add('Nodes', `${t.nodes_number} (${t.sync_replica_number} synchronous)`);
    add('Version', t.version.split('/').pop());
    add('Run state', t.run_state);
    add('External access', t.external_access ? 'on' : 'off');
    add('Connection limit', String(t.connection_limit));
    add('Pool mode', t.pool_mode);
    add('Route', t.route ? [badge(t.route.state), ` ${t.route.address ?? ''}${t.route.port ? `:${t.route.port}` : ''} ${t.route.reason ?? ''}`] : 'none');
    add(
      'Labels',
      Object.entries(t.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '—',
    );
    add(
      'Backup policy',
      t.backup_policy
        ? Object.entries(t.backup_policy)
            .map(([k, v]) => `${k.replaceAll('_', ' ')}: ${v}`)
            .join(', ')
        : 'fleet default',
    );
    if (t.backup_state)
      add(
        'Backup state',
        `last good ${age(t.backup_state.last_good_backup_at)}; archive lag ${t.backup_state.archive_lag_seconds}s, ${t.backup_state.archive_failures} failure(s)${t.backup_state.problems.length ? `; ${t.backup_state.problems.join('; ')}` : ''}`,
      );
    add('Revision', String(t.revision));
    add('Created', t.created_at);
  }
  rows($('tenant-placements').tBodies[0], t?.nodes ?? [], (n) => [
    n.host,
    n.role,
    badge(n.status),
    n.address ? `${n.address}:${n.port}` : '—',
    n.reason || '—',
  ]);
  rows($('tenant-users').tBodies[0], users.value.users, (u) => [u.name, badge(u.status), u.owner ? 'yes' : 'no', u.description || '—']);
  rows($('tenant-databases').tBodies[0], dbs.value.databases, (d) => [d.name, badge(d.status), d.owner.split('/').pop(), d.description || '—']);
  rows($('tenant-backups').tBodies[0], backups.value.backups, (b) => [
    b.id,
    b.type,
    badge(b.status),
    b.started_at ?? '—',
    b.finished_at ?? '—',
    b.size_bytes === undefined ? '—' : bytes(b.size_bytes),
  ]);
  const w = backups.value.window;
  $('tenant-window').textContent = backups.error
    ? `Backups are not shown: ${backups.error}`
    : w
      ? `Restorable from ${w.earliest} to ${w.latest}.`
      : 'No restore window yet.';
  $('tenant-events').replaceChildren(...[...events.value.events].reverse().map(eventItem));
  if (focus) $('tenant-title').focus();
}

// ---- events -----------------------------------------------------------------------------------

function eventItem(e) {
  return h(
    'li',
    { 'data-event': e.id },
    h('time', { datetime: e.time }, new Date(e.time).toLocaleTimeString()),
    h('span', { class: 'action' }, e.action),
    e.outcome !== 'SUCCESS' ? [badge(e.outcome), ' '] : null,
    e.tenant ? `tenant ${e.tenant} ` : '',
    e.host ? `host ${e.host} ` : '',
    e.message ? `— ${e.message}` : '',
    h('span', { class: 'small' }, `by ${e.principal}`),
  );
}

function addEvent(e, fresh) {
  const list = $('events');
  const li = eventItem(e);
  if (fresh) li.classList.add('fresh');
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  state.lastEventId = Math.max(state.lastEventId, e.id);
}

// Refreshes are coalesced: a burst of events about one tenant reads it once.
const pending = { tenants: new Set(), hosts: false, timer: undefined };
function scheduleRefresh(e) {
  if (e.tenant) pending.tenants.add(e.tenant);
  if (e.host || e.action.startsWith('host.') || e.action.startsWith('placement.')) pending.hosts = true;
  pending.timer ??= setTimeout(() => void flushRefresh().catch(fail), 150);
  // A tenant's backup_state is the backup walk's, which passes every tenant about once a second:
  // read it again after the walk has seen the backup the event reports.
  if (e.tenant && e.action.startsWith('backup.')) setTimeout(() => scheduleRefresh({ tenant: e.tenant, action: 'backup-state' }), 2500);
}

async function flushRefresh() {
  const tenants = [...pending.tenants];
  const hosts = pending.hosts;
  pending.tenants.clear();
  pending.hosts = false;
  pending.timer = undefined;
  await Promise.all([...tenants.map(refreshTenant), hosts ? loadHosts() : undefined, loadSummary(), loadRouters()]);
  if (state.route.view === 'tenant' && tenants.includes(state.route.id)) await loadTenantPage(state.route.id, false);
}

/** Server-sent events read with fetch, so the token travels in a header and never in a URL. */
async function follow() {
  const ctl = new AbortController();
  state.stream = ctl;
  let delay = 1000;
  while (!ctl.signal.aborted) {
    try {
      const res = await fetch(`/v1/events/stream?after=${state.lastEventId}`, {
        headers: { authorization: `Bearer ${token()}`, accept: 'text/event-stream' },
        signal: ctl.signal,
        cache: 'no-store',
      });
      if (res.status === 401) throw new SignedOut((await res.json().catch(() => ({})))?.error?.message ?? 'the token was refused');
      if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let type = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (type === 'ready') {
            setLive('live', 'Live: events stream in');
            delay = 1000;
          } else if (type === 'event') {
            const e = JSON.parse(data);
            if (e.id <= state.lastEventId) continue;
            addEvent(e, true);
            scheduleRefresh(e);
          }
        }
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
      if (err instanceof SignedOut) return fail(err);
    }
    if (ctl.signal.aborted) return;
    setLive('retry', `Event stream lost; reconnecting in ${delay / 1000}s`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

// ---- start ------------------------------------------------------------------------------------

function fail(err) {
  if (err instanceof SignedOut) signOut(`Signed out: ${err.message}. Paste a valid operator token.`);
  else setLive('retry', `Error: ${err.message}`);
}

function readRoute() {
  const m = /^#\/tenant\/(.+)$/.exec(location.hash);
  state.route = m ? { view: 'tenant', id: decodeURIComponent(m[1]) } : { view: 'fleet', id: '' };
}

async function onRoute(focus) {
  readRoute();
  if (!token()) return;
  show(state.route.view);
  if (state.route.view === 'tenant') await loadTenantPage(state.route.id, focus);
}

async function start() {
  show('fleet');
  setLive('off', 'Connecting…');
  const events = (await api('/v1/events?limit=50')).events;
  $('events').replaceChildren();
  for (const e of events) addEvent(e, false);
  await Promise.all([loadTenants(), loadHosts(), loadSummary(), loadRouters()]);
  await onRoute(false);
  void follow();
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const value = $('token').value.trim();
  if (!value) {
    $('login-error').textContent = 'Paste a token first.';
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  $('login-error').textContent = '';
  start().catch(fail);
});
$('logout').addEventListener('click', () => signOut('Signed out.'));
for (const id of ['search', 'status-filter', 'problems-filter']) $(id).addEventListener('input', renderTenants);
$('filters').addEventListener('submit', (ev) => ev.preventDefault());
window.addEventListener('hashchange', () => void onRoute(true).catch(fail));
// Ages ("last heartbeat 3s ago", "last good 2h ago") move on without events.
setInterval(() => {
  if (!token() || $('fleet-view').hidden) return;
  renderTenants();
  void loadHosts().catch(fail);
}, 15000);

if (token()) start().catch(fail);
else signOut('', false);

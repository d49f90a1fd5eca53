/**
 * The spare database every process-runtime instance starts with: the template holds a plain copy
 * of template1 under this name, which nobody may connect to (runtime/template.ts), and a tenant's
 * first database is that spare renamed (instance-admin.ts) instead of a CREATE DATABASE.
 * A name the API can never ask for (database names and tenant ids have no '.'), so it is never
 * mistaken for a tenant's database.
 */
export const SPARE_DATABASE = 'pgs.spare';

/**
 * Declarative config: each option has a flag, a PGS_* environment variable, a type, a default and
 * a description. Read once at start; flags win over env, env over defaults; a bad value fails fast
 * with a message naming the flag, the variable and what is allowed. `--help` text comes from the
 * same table, so it documents every option.
 */
export type OptionType = 'string' | 'int' | 'number' | 'bool' | 'list' | 'duration';

/** One option of an app's config. */
export interface OptionSpec<T extends OptionType = OptionType> {
  type: T;
  flag: string;
  env: string;
  description: string;
  default?: ValueOf<T>;
  required?: boolean;
  /** Allowed values for a string option. */
  choices?: readonly string[];
  min?: number;
  max?: number;
}

type ValueOf<T extends OptionType> = T extends 'int' | 'number' | 'duration' ? number : T extends 'bool' ? boolean : T extends 'list' ? string[] : string;

/** A table of options, keyed by the config property name. */
export type ConfigSpec = Record<string, OptionSpec>;

/** The typed config object a spec produces. */
export type ConfigOf<S extends ConfigSpec> = {
  readonly [K in keyof S]: S[K]['required'] extends true
    ? ValueOf<S[K]['type']>
    : S[K]['default'] extends undefined
      ? ValueOf<S[K]['type']> | undefined
      : ValueOf<S[K]['type']>;
};

/** A config value that cannot be used; the message says what to do. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The outcome of reading a config: the frozen values, or a request for help. */
export type ConfigResult<S extends ConfigSpec> = { kind: 'config'; config: ConfigOf<S> } | { kind: 'help'; text: string };

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** Parses "250ms", "5s", "2m", "1h" or a plain number of milliseconds. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw new ConfigError(`"${text}" is not a duration (use e.g. 500ms, 5s, 2m, 1h)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return Math.round(n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
}

function convert(name: string, spec: OptionSpec, raw: string, origin: string): unknown {
  const where = `${origin} (${spec.flag} / ${spec.env})`;
  switch (spec.type) {
    case 'string':
      if (spec.choices && !spec.choices.includes(raw)) throw new ConfigError(`${where}: "${raw}" is not one of ${spec.choices.join(', ')}`);
      return raw;
    case 'bool':
      if (['1', 'true', 'yes', 'on', ''].includes(raw.toLowerCase())) return true;
      if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
      throw new ConfigError(`${where}: "${raw}" is not a boolean (true/false)`);
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    case 'int':
    case 'number':
    case 'duration': {
      let n: number;
      try {
        n = spec.type === 'duration' ? parseDuration(raw) : Number(raw);
      } catch (err) {
        throw new ConfigError(`${where}: ${(err as Error).message}`);
      }
      if (!Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n)))
        throw new ConfigError(`${where}: "${raw}" is not ${spec.type === 'int' ? 'an integer' : 'a number'}`);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError(`${where}: ${raw} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new ConfigError(`${where}: ${raw} is above the maximum ${spec.max}`);
      return n;
    }
  }
  throw new ConfigError(`option ${name} has an unknown type`);
}

/** The --help text for a spec. */
export function helpText(usage: string, spec: ConfigSpec): string {
  const rows = Object.values(spec).map((o) => {
    const flag = `${o.flag}${o.type === 'bool' ? '' : ` <${o.type === 'list' ? 'a,b' : o.type}>`}`;
    const dflt =
      o.default === undefined ? (o.required ? ' (required)' : '') : ` (default: ${Array.isArray(o.default) ? o.default.join(',') : String(o.default)})`;
    const choices = o.choices ? ` [${o.choices.join('|')}]` : '';
    return `  ${flag.padEnd(34)} ${o.env.padEnd(30)} ${o.description}${choices}${dflt}`;
  });
  return `${usage}\n\nOptions (flag, environment variable, meaning):\n${rows.join('\n')}\n  ${'--help'.padEnd(34)} ${''.padEnd(30)} show this help\n`;
}

/** Reads flags (argv without node and script) and env against the spec. */
export function loadConfig<S extends ConfigSpec>(
  spec: S,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  usage: string,
): ConfigResult<S> {
  const byFlag = new Map(Object.entries(spec).map(([name, o]) => [o.flag, name]));
  const fromFlags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') return { kind: 'help', text: helpText(usage, spec) };
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const name = byFlag.get(flag);
    if (!name) throw new ConfigError(`unknown option ${flag}; run with --help to see the options`);
    const o = spec[name]!;
    if (eq > 0) fromFlags.set(name, arg.slice(eq + 1));
    else if (o.type === 'bool') fromFlags.set(name, 'true');
    else {
      const next = argv[++i];
      if (next === undefined) throw new ConfigError(`option ${flag} needs a value`);
      fromFlags.set(name, next);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec)) {
    const flagValue = fromFlags.get(name);
    const envValue = env[o.env];
    if (flagValue !== undefined) out[name] = convert(name, o, flagValue, `flag ${o.flag}`);
    else if (envValue !== undefined && envValue !== '') out[name] = convert(name, o, envValue, `environment ${o.env}`);
    else if (o.default !== undefined) out[name] = o.default;
    else if (o.required) throw new ConfigError(`missing ${o.flag} (or ${o.env}): ${o.description}`);
    else out[name] = undefined;
  }
  return { kind: 'config', config: Object.freeze(out) as ConfigOf<S> };
}

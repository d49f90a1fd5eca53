/**
 * The `options` startup parameter, split and joined exactly as PostgreSQL does
 * (src/backend/utils/init/postinit.c pg_split_opts: whitespace separates arguments, a backslash
 * makes the next character literal), so what we forward is what the server would have read.
 */

/** Splits an options string into arguments: 'a\ b  c' -> ['a b', 'c']. */
export function splitStartupOptions(options: string): string[] {
  const args: string[] = [];
  let current = '';
  let inArg = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i] as string;
    if (ch === '\\' && i + 1 < options.length) {
      current += options[i + 1];
      inArg = true;
      i++;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (inArg) args.push(current);
  return args;
}

/** Joins arguments back into one options string, escaping backslashes and whitespace. */
export function joinStartupOptions(args: readonly string[]): string {
  return args.map((arg) => arg.replace(/[\\\s]/g, (ch) => `\\${ch}`)).join(' ');
}

/** One `name=value` setting found in the options, and which arguments spelled it. */
export interface OptionSetting {
  /** GUC name as PostgreSQL normalizes it: lower case, '-' read as '_' in the long form. */
  name: string;
  value: string;
  /** Index of the first argument and how many arguments it took (`-c x=y` takes two). */
  start: number;
  count: number;
  /** True for a bare `name=value` argument (Neon's `project=` style), which PostgreSQL itself would refuse. */
  bare: boolean;
}

/** Finds the settings in split options: `-c name=value`, `-cname=value`, `--name=value` and bare `name=value`. */
export function findOptionSettings(args: readonly string[]): OptionSetting[] {
  const settings: OptionSetting[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    let text: string | undefined;
    let count = 1;
    let bare = false;
    if (arg === '-c' && i + 1 < args.length) {
      text = args[i + 1];
      count = 2;
    } else if (arg.startsWith('-c') && arg.length > 2) {
      text = arg.slice(2);
    } else if (arg.startsWith('--')) {
      text = arg.slice(2);
    } else if (!arg.startsWith('-')) {
      text = arg;
      bare = true;
    }
    const eq = text?.indexOf('=') ?? -1;
    if (text !== undefined && eq > 0) {
      const rawName = text.slice(0, eq).toLowerCase();
      // ParseLongOption turns '-' into '_' only for the --name=value form.
      const name = arg.startsWith('--') ? rawName.replaceAll('-', '_') : rawName;
      settings.push({ name, value: text.slice(eq + 1), start: i, count, bare });
    }
    i += count - 1;
  }
  return settings;
}

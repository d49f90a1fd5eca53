/**
 * Shell completion scripts generated from the command tree itself, so every command, alias and
 * option that exists completes and nothing else does.
 */
import type { Command } from 'commander';
import { OUTPUT_FORMATS } from './output.js';

interface Node {
  path: string;
  words: string[];
}

function optionFlags(command: Command): string[] {
  return command.options.flatMap((o) => [o.short, o.long].filter((f): f is string => typeof f === 'string'));
}

function walk(command: Command, path: string, out: Node[], transitions: string[], globals: readonly string[]): void {
  const subs = command.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden);
  out.push({ path, words: [...new Set([...subs.map((c) => c.name()), ...optionFlags(command), ...globals, '--help'])] });
  for (const sub of subs) {
    const childPath = `${path}/${sub.name()}`;
    for (const name of [sub.name(), ...sub.aliases()]) transitions.push(`${path}/${name}) path=${quote(childPath)} ;;`);
    walk(sub, childPath, out, transitions, globals);
  }
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** A bash completion script for `program`. */
export function bashCompletion(program: Command): string {
  const name = program.name();
  const nodes: Node[] = [];
  const transitions: string[] = [];
  const globals = optionFlags(program);
  walk(program, '', nodes, transitions, globals);
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}_complete`;
  return `# ${name} bash completion. Load it with: source <(${name} completion bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" word i
  case "$prev" in
    -o|--output) COMPREPLY=( $(compgen -W ${quote(OUTPUT_FORMATS.join(' '))} -- "$cur") ); return 0 ;;
  esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    case "$path/$word" in
      ${transitions.join('\n      ')}
    esac
  done
  local words=""
  case "$path" in
    ${nodes.map((n) => `${quote(n.path)}) words=${quote(n.words.join(' '))} ;;`).join('\n    ')}
  esac
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
complete -o default -F ${fn} ${name}
`;
}

/** A zsh completion script: zsh runs the bash function through bashcompinit. */
export function zshCompletion(program: Command): string {
  return `# ${program.name()} zsh completion. Load it with: source <(${program.name()} completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program).split('\n').slice(1).join('\n')}`;
}

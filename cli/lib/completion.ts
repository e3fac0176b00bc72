// `kubemcsa completion bash|zsh|fish`: shell completion generated from the program's own commands
// and options (so it cannot drift from --help). Context flags complete with the contexts of
// `kubectl config get-contexts -o name`; file flags with file names; `-o` with its choices.
import type { Command, Option } from 'commander';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface OptionSpec {
  long?: string;
  short?: string;
  /** Takes a value: the next word is not a command or a flag. */
  value: boolean;
  choices?: string[];
  /** How to complete the value. */
  kind: 'context' | 'file' | 'choices' | 'none';
  description: string;
}

interface CommandSpec {
  name: string;
  summary: string;
  options: OptionSpec[];
  /** The choices of its positional arguments, if any (`completion bash|zsh|fish`). */
  argumentChoices: string[];
}

interface CompletionSpec {
  program: string;
  commands: CommandSpec[];
  globalOptions: OptionSpec[];
}

function optionSpec(o: Option): OptionSpec {
  const value = o.required || o.optional;
  const choices = o.argChoices;
  const kind = choices ? 'choices' : /context/.test(o.long ?? '') ? 'context' : /kubeconfig|file/.test(o.long ?? '') ? 'file' : 'none';
  return { ...(o.long ? { long: o.long } : {}), ...(o.short ? { short: o.short } : {}), value, ...(choices ? { choices } : {}), kind, description: o.description };
}

/** What to complete, read from the commander program. */
export function completionSpec(program: Command): CompletionSpec {
  const help = (o: Option[]) => [...o, { long: '--help', short: '-h', required: false, optional: false, description: 'show help' } as Option];
  return {
    program: program.name(),
    globalOptions: help(program.options as Option[]).map(optionSpec),
    commands: program.commands.map((c) => ({
      name: c.name(),
      summary: c.summary() || c.description().split('. ')[0]!,
      options: help(c.options as Option[]).map(optionSpec),
      argumentChoices: c.registeredArguments.flatMap((a) => a.argChoices ?? []),
    })),
  };
}

/** Single-quoted for sh-like shells. */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function bash(spec: CompletionSpec, zsh: boolean): string {
  const fn = `_${spec.program.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const words = (opts: OptionSpec[]) => opts.flatMap((o) => [o.long, o.short].filter((x): x is string => x !== undefined)).join(' ');
  const valueCases = (opts: OptionSpec[]) =>
    opts
      .filter((o) => o.value)
      .map((o) => {
        const pat = [o.long, o.short].filter(Boolean).join('|');
        const action =
          o.kind === 'choices'
            ? `COMPREPLY=($(compgen -W ${sq(o.choices!.join(' '))} -- "$cur"))`
            : o.kind === 'context'
              ? `COMPREPLY=($(compgen -W "$(kubectl config get-contexts -o name 2>/dev/null)" -- "$cur"))`
              : o.kind === 'file'
                ? `COMPREPLY=($(compgen -f -- "$cur"))`
                : 'COMPREPLY=()';
        return `      ${pat}) ${action}; return ;;`;
      })
      .join('\n');
  const commandCases = spec.commands
    .map((c) => [`    ${c.name})`, `      case "$prev" in`, valueCases(c.options), '      esac', `      COMPREPLY=($(compgen -W ${sq([...c.argumentChoices, words(c.options)].join(' '))} -- "$cur"))`, '      ;;'].join('\n'))
    .join('\n');
  const lines = [
    `# ${spec.program} completion for ${zsh ? 'zsh' : 'bash'}: source <(${spec.program} completion ${zsh ? 'zsh' : 'bash'})`,
    ...(zsh ? ['autoload -U +X bashcompinit && bashcompinit'] : []),
    `${fn}() {`,
    '  local cur prev cmd i',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  cmd=""',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    case "${COMP_WORDS[i]}" in',
    `      ${spec.commands.map((c) => c.name).join('|')}) cmd="\${COMP_WORDS[i]}"; break ;;`,
    '    esac',
    '  done',
    '  case "$cmd" in',
    '    "")',
    `      COMPREPLY=($(compgen -W ${sq([...spec.commands.map((c) => c.name), words(spec.globalOptions)].join(' '))} -- "$cur"))`,
    '      ;;',
    commandCases,
    '  esac',
    '}',
    `complete -F ${fn} ${spec.program} kubectl-mcsa`,
    '',
  ];
  return lines.join('\n');
}

function fish(spec: CompletionSpec): string {
  const p = spec.program;
  const names = spec.commands.map((c) => c.name).join(' ');
  const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const option = (o: OptionSpec, condition: string) => {
    const parts = [`complete -c ${p} -n ${q(condition)}`];
    if (o.long) parts.push(`-l ${o.long.replace(/^--/, '')}`);
    if (o.short) parts.push(`-s ${o.short.replace(/^-/, '')}`);
    if (o.value) parts.push('-r');
    if (o.kind === 'choices') parts.push(`-f -a ${q(o.choices!.join(' '))}`);
    else if (o.kind === 'context') parts.push(`-f -a ${q('(kubectl config get-contexts -o name 2>/dev/null)')}`);
    else if (o.kind === 'file') parts.push('-F');
    parts.push(`-d ${q(o.description.split(' (')[0]!)}`);
    return parts.join(' ');
  };
  return [
    `# ${p} completion for fish: ${p} completion fish | source`,
    `complete -c ${p} -f`,
    ...spec.commands.map((c) => `complete -c ${p} -n ${q(`not __fish_seen_subcommand_from ${names}`)} -a ${c.name} -d ${q(c.summary)}`),
    ...spec.globalOptions.map((o) => option(o, `not __fish_seen_subcommand_from ${names}`)),
    ...spec.commands.flatMap((c) => c.options.map((o) => option(o, `__fish_seen_subcommand_from ${c.name}`))),
    ...spec.commands.filter((c) => c.argumentChoices.length > 0).map((c) => `complete -c ${p} -n ${q(`__fish_seen_subcommand_from ${c.name}`)} -a ${q(c.argumentChoices.join(' '))}`),
    `complete -c kubectl-mcsa -w ${p}`,
    '',
  ].join('\n');
}

/** The completion script for `shell`. */
export function completionScript(shell: Shell, spec: CompletionSpec): string {
  return shell === 'fish' ? fish(spec) : bash(spec, shell === 'zsh');
}

// The kubemcsa command line: argument parsing, help and exit codes. Each command decodes its
// options (src/bootstrap/options.ts) and hands them to a runner in cli/lib.
import { buildCommit, packageVersion, TESTED_KUBERNETES_VERSIONS } from '../src/version.js';
import { Argument, Command, CommanderError, Option } from 'commander';
import { completionScript, completionSpec, SHELLS, type Shell } from './lib/completion.js';
import { describeError } from '../src/bootstrap/describe.js';
import { exitCodeOf } from '../src/bootstrap/errors.js';
import {
  DEFAULT_EXPORT_DURATION,
  DEFAULT_REGISTRATION_DURATION,
  DEFAULT_TIMEOUT,
  parseBootstrapOptions,
  parseExportOptions,
  parseFederateOptions,
  parseGrantOptions,
  parseKubeconfigOptions,
  parseStatusOptions,
  parseUnbootstrapOptions,
  parseUnfederateOptions,
  type BootstrapOptions,
  type ExportOptions,
  type FederateOptions,
  type GrantOptions,
  type KubeconfigOptions,
  type StatusOptions,
  type UnbootstrapOptions,
  type UnfederateOptions,
} from '../src/bootstrap/options.js';
import type { Output } from './lib/output.js';

/** What each command does once its options are valid (injected so tests can check parsing alone). */
export interface Runners {
  bootstrap(o: BootstrapOptions, out: Output): Promise<void>;
  unbootstrap(o: UnbootstrapOptions, out: Output): Promise<void>;
  grant(o: GrantOptions, out: Output): Promise<void>;
  revoke(o: GrantOptions, out: Output): Promise<void>;
  export(o: ExportOptions, out: Output): Promise<void>;
  kubeconfig(o: KubeconfigOptions, out: Output): Promise<void>;
  status(o: StatusOptions, out: Output): Promise<void>;
  federate(o: FederateOptions, out: Output): Promise<void>;
  unfederate(o: UnfederateOptions, out: Output): Promise<void>;
}

const HELP_WIDTH = 100;

function clusterOptions(cmd: Command): Command {
  return cmd
    .option('--target-context <context>', 'kubeconfig context of the target cluster (default: the current context)')
    .option('--target-kubeconfig <file>', 'kubeconfig file of the target cluster (default: KUBECONFIG or ~/.kube/config)')
    .option('--target-name <name>', "name of the target cluster (default: the target context's cluster name)")
    .option('--source-context <context>', 'kubeconfig context of the source cluster (default: the current context)')
    .option('--source-kubeconfig <file>', 'kubeconfig file of the source cluster (default: KUBECONFIG or ~/.kube/config)')
    .option('--source-name <name>', "name of the source cluster (default: the source context's cluster name)");
}

/** The arguments grant and revoke share: what is granted, to which target, in which source. */
function grantOptions(cmd: Command): Command {
  return cmd
    .argument('[SERVICEACCOUNT]', 'the ServiceAccount of the source to grant (or --all-service-accounts, or --cluster-wide)')
    .option('-n, --namespace <namespace>', 'namespace of the ServiceAccount(s) in the source (not with --cluster-wide)')
    .option('--target-name <name>', 'name of the target cluster: its importer ServiceAccount in the source (as given to bootstrap)')
    .option('--target-context <context>', "instead of --target-name: the kubeconfig context whose cluster name is the target's (not contacted)")
    .option('--target-kubeconfig <file>', 'kubeconfig file of --target-context (default: KUBECONFIG or ~/.kube/config)')
    .option('--source-context <context>', 'kubeconfig context of the source cluster (default: the current context)')
    .option('--source-kubeconfig <file>', 'kubeconfig file of the source cluster (default: KUBECONFIG or ~/.kube/config)')
    .option('--all-service-accounts', 'every ServiceAccount of --namespace, present and future')
    .option('--cluster-wide', 'every ServiceAccount of every namespace but kube-system and multicluster-service-account (warns)')
    .option('--federated', 'the target is federated with this source: bind the ClusterRole of --role to its mapped identity in --namespace instead')
    .option('--role <clusterrole>', 'with --federated: the ClusterRole bound (RoleBinding in --namespace) to the federated ServiceAccount or namespace')
    .option('--dry-run', 'run the pre-flight checks and print the plan; change nothing');
}

const outputOption = (choices: string[], fallback: string) =>
  new Option('-o, --output <format>', 'output format').choices(choices).default(fallback);

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/**
 * The program. `out` receives data and progress lines; `runners` do the work. Errors (usage or
 * runtime) are reported by `main`, not here.
 */
function buildProgram(runners: Runners, out: Output, errors: { write(s: string): void }): Command {
  const program = new Command('kubemcsa')
    .description(
      'Set up and inspect multicluster-service-account: let pods in a target cluster call the APIs of source ' +
        'clusters as remote ServiceAccounts, with short-lived tokens refreshed by the controller.',
    )
    .version(packageVersion(), '--version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand(false)
    .configureHelp({ helpWidth: HELP_WIDTH })
    .exitOverride()
    .configureOutput({
      writeOut: (s) => out.data(s),
      writeErr: (s) => errors.write(s),
      outputError: (s, write) => write(`kubemcsa: ${s.trim().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .addHelpText(
      'after',
      `
Examples:
  # Let pods in cluster1 import ServiceAccount team-a/pod-lister of cluster2
  kubemcsa bootstrap --target-context cluster1 --source-context cluster2
  kubemcsa grant pod-lister -n team-a --target-name cluster1 --source-context cluster2

  # Print a Secret holding a token of ServiceAccount default/pod-lister, for another cluster
  kubemcsa export pod-lister -n default --context cluster2 | kubectl --context cluster1 apply -f -

  # Which clusters are registered in the current cluster, and are they healthy?
  kubemcsa status

Exit codes: 0 success, 1 failure, 2 usage error. As a kubectl plugin: kubectl mcsa <command>.`,
    );

  clusterOptions(
    program
      .command('bootstrap')
      .summary('register a source cluster in a target cluster')
      .description(
        'Register a source cluster in a target cluster: create, in the source, the namespace ' +
          'multicluster-service-account, an importer ServiceAccount named after the target and its ' +
          'least-privilege RBAC (get/list/watch serviceaccounts, and a token for itself only); then, in the ' +
          'target, a ServiceAccountImport named after the source in multicluster-service-account and its ' +
          'Secret holding a freshly minted token. No ServiceAccount of the source is importable until it is ' +
          'granted (kubemcsa grant). Idempotent: a second run changes nothing.',
      ),
  )
    .option('--source-server <url>', 'API server URL the target will use for the source (default: from the source kubeconfig)')
    .option('--source-namespaces <list>', 'comma-separated source namespaces the importer may read ServiceAccounts in (default: all)')
    .option('--registration-duration <duration>', "lifetime of the registration's tokens, 10m to 168h (7 days)", DEFAULT_REGISTRATION_DURATION)
    .option('--dry-run', 'run the pre-flight checks and print the plan; change nothing')
    .addOption(new Option('-o, --output <format>', 'with --dry-run: print the objects bootstrap applies, by cluster, instead of the plan (for GitOps)').choices(['yaml', 'json']))
    .option('--wait', "wait for the registration's Ready condition (needs the controller in the target)")
    .option('--timeout <duration>', 'how long --wait (and waiting for a namespace being deleted) may take', DEFAULT_TIMEOUT)
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa bootstrap --target-context cluster1 --source-context cluster2
  kubemcsa bootstrap --target-kubeconfig t.yaml --source-kubeconfig s.yaml \\
    --target-name eu-1 --source-name us-1 --source-server https://us-1.example.com:6443
  kubemcsa bootstrap --target-context cluster1 --source-context cluster2 --source-namespaces team-a,team-b
  kubemcsa bootstrap --target-context cluster1 --source-context cluster2 --dry-run
  kubemcsa bootstrap --target-context cluster1 --source-context cluster2 --dry-run -o yaml > registration.yaml
  kubemcsa bootstrap --target-context cluster1 --source-context cluster2 --wait --timeout 2m`,
    )
    .action(async (raw: unknown) => runners.bootstrap(parseBootstrapOptions(raw), out));

  clusterOptions(
    program
      .command('unbootstrap')
      .summary('remove a registration from both clusters')
      .description(
        'Remove what bootstrap created: the registration (ServiceAccountImport and Secret) in the target; ' +
          'the bindings, roles and importer ServiceAccount in the source (deleting it revokes every token it ' +
          'minted); the ClusterRole and the namespace once nothing else uses them. Idempotent.',
      ),
  )
    .option('--dry-run', 'run the pre-flight checks and report what would be deleted (reading both clusters); delete nothing')
    .option('--wait', "wait until the importer ServiceAccount is gone, the source refuses the registration's token and deleted namespaces are gone")
    .option('--timeout <duration>', 'how long --wait may take', DEFAULT_TIMEOUT)
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa unbootstrap --target-context cluster1 --source-context cluster2
  kubemcsa unbootstrap --target-context cluster1 --source-context cluster2 --dry-run
  kubemcsa unbootstrap --target-context cluster1 --source-context cluster2 --wait`,
    )
    .action(async (raw: unknown) => runners.unbootstrap(parseUnbootstrapOptions(raw), out));

  grantOptions(
    program
      .command('grant')
      .summary('let a target cluster import a ServiceAccount (or a namespace) of the source')
      .description(
        'In the source cluster, let target cluster T (bootstrapped with this source) mint tokens for ServiceAccount ' +
          'SERVICEACCOUNT of NAMESPACE, for every ServiceAccount of NAMESPACE (--all-service-accounts) or, with a ' +
          'warning, of every namespace (--cluster-wide): an anchor Secret, a Role and a RoleBinding (or a ' +
          'ClusterRoleBinding), then a record on the importer ServiceAccount. kube-system and ' +
          'multicluster-service-account are never granted. With --federated (a federated target, see the federate ' +
          'command): only a RoleBinding in NAMESPACE of the source binding --role to the identity the source maps ' +
          'from the target pods (mcsa:T:system:serviceaccount:NAMESPACE:SERVICEACCOUNT, or the group ' +
          'mcsa:T:system:serviceaccounts:NAMESPACE). Idempotent: a second run changes nothing.',
      ),
  )
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa grant pod-lister -n team-a --target-name cluster1 --source-context cluster2
  kubemcsa grant --all-service-accounts -n team-a --target-context cluster1 --source-context cluster2
  kubemcsa grant pod-lister -n team-a --target-name cluster1 --source-context cluster2 --dry-run
  kubemcsa grant pod-lister -n team-a --target-name cluster1 --source-context cluster2 --federated --role view`,
    )
    .action(async (name: unknown, raw: unknown) => runners.grant(parseGrantOptions(name, raw), out));

  grantOptions(
    program
      .command('revoke')
      .summary('undo a grant: tokens minted under it stop working at once')
      .description(
        'In the source cluster, remove a grant made with kubemcsa grant (same arguments): its record on the ' +
          'importer ServiceAccount first, then its anchor Secret (every token minted under the grant stops ' +
          'authenticating), RoleBinding and Role (or its ClusterRoleBinding, and the shared ClusterRole once ' +
          'unused); with --federated, the RoleBinding of --role (calls are refused at once). Absent objects are fine. ' +
          'Idempotent.',
      ),
  )
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa revoke pod-lister -n team-a --target-name cluster1 --source-context cluster2
  kubemcsa revoke --cluster-wide --target-name cluster1 --source-context cluster2 --dry-run
  kubemcsa revoke pod-lister -n team-a --target-name cluster1 --source-context cluster2 --federated --role view`,
    )
    .action(async (name: unknown, raw: unknown) => runners.revoke(parseGrantOptions(name, raw), out));

  clusterOptions(
    program
      .command('federate')
      .summary("let a source's API server trust the target's ServiceAccount tokens (no token copied)")
      .description(
        "Federate a target with a source (ADR 0022, docs/federation.md): read the target's ServiceAccount issuer from its " +
          'discovery document, check that it and its keys are readable without credentials (as the source API server reads ' +
          'them), write the federated source record (ConfigMap federated-<source> in multicluster-service-account of the ' +
          "target: the source's server, CA and audience), and print the JWT authenticator entry the source's API server " +
          'needs in its AuthenticationConfiguration (--authentication-config): pods of the target are then users ' +
          'mcsa:<target>:system:serviceaccount:<namespace>:<name> there. Idempotent.',
      ),
  )
    .option('--source-server <url>', 'API server URL the target\'s pods will use for the source (default: from the source kubeconfig)')
    .option('--audience <audience>', 'the audience the source accepts (default: multicluster.admiralty.io/<source name>)')
    .option('--discovery-url <url>', "where the source fetches the issuer's discovery document, when not <issuer>/.well-known/openid-configuration")
    .option('--allow-anonymous-discovery', 'bind system:service-account-issuer-discovery to system:unauthenticated in the target when discovery is refused (warns)')
    .option('--authentication-config <file>', "merge the entry into this AuthenticationConfiguration file of the source's API server (atomic replace; created if absent)")
    .option('--refresh-keys', "rewrite that file even if unchanged, so the source's API server fetches the target's keys again (after the target rotated its signing key)")
    .option('--dry-run', 'run the checks and print the entry; change nothing (no record, no binding, no file)')
    .addOption(outputOption(['yaml', 'json'], 'yaml'))
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa federate --target-context cluster1 --source-context cluster2
  kubemcsa federate --target-context cluster1 --source-context cluster2 --allow-anonymous-discovery \\
    --authentication-config /etc/kubernetes/authentication-config.yaml
  kubemcsa federate --target-context cluster1 --source-context cluster2 --dry-run -o json
  kubemcsa federate --target-context cluster1 --source-context cluster2 --refresh-keys \\
    --authentication-config /etc/kubernetes/authentication-config.yaml`,
    )
    .action(async (raw: unknown) => runners.federate(parseFederateOptions(raw), out));

  clusterOptions(
    program
      .command('unfederate')
      .summary('remove a federated source record (and its JWT authenticator from a file)')
      .description(
        'Undo kubemcsa federate: delete the federated source record of the source in the target and, with ' +
          "--authentication-config, remove the target's JWT authenticator from that file of the source's API server (its " +
          'tokens are refused from its next reload). The anonymous discovery binding is kept. Idempotent.',
      ),
  )
    .option('--authentication-config <file>', "remove the target's JWT authenticator from this AuthenticationConfiguration file (atomic replace)")
    .option('--dry-run', 'report what would be removed; change nothing')
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa unfederate --target-context cluster1 --source-context cluster2
  kubemcsa unfederate --target-context cluster1 --source-context cluster2 --authentication-config /etc/kubernetes/authentication-config.yaml`,
    )
    .action(async (raw: unknown) => runners.unfederate(parseUnfederateOptions(raw), out));

  program
    .command('export')
    .summary('print a Secret with a fresh token of a ServiceAccount')
    .description(
      'Mint a token for ServiceAccount NAME (TokenRequest API) and print a Secret with the keys ca.crt, ' +
        'namespace, token, server and config (a kubeconfig with the token inline), ready for kubectl apply.',
    )
    .argument('<NAME>', 'the ServiceAccount')
    .option('-n, --namespace <namespace>', "namespace of the ServiceAccount (default: the context's, else default)")
    .option('--context <context>', 'kubeconfig context (default: the current context)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: KUBECONFIG or ~/.kube/config)')
    .option('--as <name>', 'name of the printed Secret (default: NAME)')
    .option('--duration <duration>', 'requested token lifetime, at least 10m', DEFAULT_EXPORT_DURATION)
    .option('--audience <audience>', 'requested token audience, repeatable (default: the API server)', collect)
    .option('--server <url>', 'API server URL to put in the Secret (default: from the kubeconfig)')
    .addOption(outputOption(['yaml', 'json'], 'yaml'))
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa export pod-lister -n default --context cluster2 | kubectl --context cluster1 -n team-a apply -f -
  kubemcsa export pod-lister -n default --as cluster2-pod-lister --duration 24h -o json`,
    )
    .action(async (name: unknown, raw: unknown) => runners.export(parseExportOptions(name, raw), out));

  program
    .command('kubeconfig')
    .summary("print a portable kubeconfig for an import's current token")
    .description(
      "Print a kubeconfig with the current token of ServiceAccountImport IMPORT inline (read from the import's " +
        'Secret), for use outside a pod. The token expires; run the command again for a fresh one.',
    )
    .argument('<IMPORT>', 'the ServiceAccountImport')
    .option('-n, --namespace <namespace>', "namespace of the import (default: the context's, else default)")
    .option('--context <context>', 'kubeconfig context (default: the current context)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: KUBECONFIG or ~/.kube/config)')
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa kubeconfig cluster2-pod-lister -n team-a --context cluster1 > remote.kubeconfig
  kubectl --kubeconfig remote.kubeconfig get pods`,
    )
    .action(async (name: unknown, raw: unknown) => runners.kubeconfig(parseKubeconfigOptions(name, raw), out));

  program
    .command('status')
    .summary('show registered clusters, imports, grants and federated sources')
    .description(
      'Show the clusters registered in a cluster (ServiceAccountImports in multicluster-service-account) ' +
        'with their Ready condition and token expiry, every ServiceAccountImport in all namespaces, the ' +
        'grants the cluster gives, as a source, to target clusters, and the federated sources (kubemcsa federate): for ' +
        'each, whether the source accepts a fresh 600 s token of a pod of multicluster-service-account bound to that pod ' +
        '(SelfSubjectReview at the source; the token is never printed).',
    )
    .option('--context <context>', 'kubeconfig context (default: the current context)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: KUBECONFIG or ~/.kube/config)')
    .addOption(outputOption(['table', 'yaml', 'json'], 'table'))
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa status --context cluster1
  kubemcsa status -o json`,
    )
    .action(async (raw: unknown) => runners.status(parseStatusOptions(raw), out));

  program
    .command('version')
    .summary('print the version, the commit and the Kubernetes versions it was tested with')
    .description('Print the version of kubemcsa, the commit it was built from (single executables), its Node.js, and the Kubernetes versions the project is tested with.')
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa version            # version, commit, Node.js, tested Kubernetes versions`,
    )
    .action(() => {
      const commit = buildCommit();
      out.data(
        [
          `kubemcsa ${packageVersion()}`,
          `commit: ${commit ?? 'unknown (not a single-executable build)'}`,
          `node: ${process.version} (${process.platform}-${process.arch})`,
          `tested with Kubernetes: ${TESTED_KUBERNETES_VERSIONS.join(', ')}`,
          '',
        ].join('\n'),
      );
    });

  program
    .command('completion')
    .summary('print a shell completion script (bash, zsh or fish)')
    .description(
      'Print the completion script of kubemcsa for SHELL: commands, flags, the choices of -o, kubeconfig ' +
        'contexts (from kubectl config get-contexts) for the context flags, file names for the kubeconfig flags.',
    )
    .addArgument(new Argument('<SHELL>', 'bash, zsh or fish').choices([...SHELLS]))
    .addHelpText(
      'after',
      `
Examples:
  kubemcsa completion bash > /etc/bash_completion.d/kubemcsa      # or: source <(kubemcsa completion bash)
  kubemcsa completion zsh > "\${fpath[1]}/_kubemcsa"                # or: source <(kubemcsa completion zsh)
  kubemcsa completion fish > ~/.config/fish/completions/kubemcsa.fish`,
    )
    .action((shell: Shell) => out.data(completionScript(shell, completionSpec(program))));

  for (const cmd of program.commands) {
    cmd
      .helpOption('-h, --help', 'show help')
      .configureHelp({ helpWidth: HELP_WIDTH })
      .configureOutput({
        ...program.configureOutput(),
        outputError: (s, write) => write(`kubemcsa: ${s.trim().replace(/\s*\n\s*/g, ' ')} (see 'kubemcsa ${cmd.name()} --help')\n`),
      });
  }
  return program;
}

/** Runs the CLI with `argv` (without `node` and the script); resolves with the exit code. */
export async function main(argv: string[], runners: Runners, out: Output, errors: { write(s: string): void }): Promise<number> {
  const program = buildProgram(runners, out, errors);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version end with 0; anything commander rejects is a usage error.
      return e.exitCode === 0 ? 0 : 2;
    }
    errors.write(`kubemcsa: error: ${describeError(e)}\n`);
    return exitCodeOf(e);
  }
}

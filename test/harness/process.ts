import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * A child process run in its own process group behind a small shell guard: when this Node
 * process dies for any reason (even SIGKILL), the guard sees its stdin close and terminates the
 * child, so no etcd or apiserver outlives the harness.
 */
export class ManagedProcess {
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    readonly logFile: string,
    env: NodeJS.ProcessEnv = {},
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
    const guard =
      'exec 3<&0; "$@" </dev/null & c=$!; ' +
      '{ cat <&3 >/dev/null; kill -TERM $c 2>/dev/null; sleep 15; kill -KILL $c 2>/dev/null; } & ' +
      "trap 'kill -TERM $c 2>/dev/null' TERM INT; " +
      'rc=0; while kill -0 $c 2>/dev/null; do wait $c; rc=$?; done; exit $rc';
    this.child = spawn('bash', ['-c', guard, 'guard', command, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', ...env },
    });
    this.child.stdout!.pipe(this.log, { end: false });
    this.child.stderr!.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? 128 : null);
        resolve(this.exitCode);
      });
    });
    // The guard's stdin must not keep the event loop alive.
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
    this.child.unref();
    (this.child.stdout as unknown as { unref?: () => void }).unref?.();
    (this.child.stderr as unknown as { unref?: () => void }).unref?.();
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** SIGTERM the child (through its guard), wait up to `graceMs`, then SIGKILL the whole group. */
  async stop(graceMs = 20_000): Promise<void> {
    this.child.ref(); // keep the event loop alive until the exit is seen
    if (this.running) {
      try {
        process.kill(this.child.pid!, 'SIGTERM'); // the guard forwards it to the child and waits
      } catch {
        // already gone
      }
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
      ]);
      if (timedOut) {
        this.signalGroup('SIGKILL');
        await this.exited;
      }
    }
    // The guard's watcher may still be alive, blocked on stdin: end it too.
    this.signalGroup('SIGKILL');
    this.child.stdin?.destroy();
    await new Promise<void>((r) => this.log.end(r));
  }

  private signalGroup(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, sig);
    } catch {
      // already gone
    }
  }
}

// Where the CLI writes: data on stdout, one progress line per step on stderr.
export interface Output {
  /** Data (manifests, kubeconfigs, tables): stdout. */
  data(text: string): void;
  /** One progress line: stderr. */
  progress(line: string): void;
}

export const processOutput: Output = {
  data: (text) => void process.stdout.write(text),
  progress: (line) => void process.stderr.write(`${line}\n`),
};

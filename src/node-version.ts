// The oldest Node.js the programs run on. Imported first by each entry point (kubemcsa, the
// controller, the webhook), so that an older Node stops with one clear line instead of an
// obscure error from deep inside a dependency (on Node 20, client-node fails with "Cannot read
// properties of undefined (reading 'bind')").
const MIN_MAJOR = 22;

const major = Number(process.versions.node.split('.')[0]);
if (!(major >= MIN_MAJOR)) {
  process.stderr.write(
    `multicluster-service-account: needs Node.js ${MIN_MAJOR} or later (tested on 24 LTS); this is ${process.version} at ${process.execPath}. ` +
      `Install a current Node.js, or use the single-file kubemcsa executable or the container image, which bring their own.\n`,
  );
  process.exit(1);
}

// Fails loudly when an npm script runs on a Node.js older than the project supports. The `node`
// devDependency puts Node 24 first on every npm script's PATH; an npm that skipped its install
// script would silently fall back to the machine's Node, which this check catches.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(
    `multicluster-service-account needs Node.js >= 22 (tested on 24 LTS), but this script runs on ` +
      `${process.version} (${process.execPath}). Run \`npm ci\` with install scripts enabled so the ` +
      `pinned \`node\` devDependency provides Node 24, or put Node 24 first on PATH.`,
  );
  process.exit(1);
}
if (process.argv.includes('--print')) console.log(`Node.js ${process.version} at ${process.execPath}`);

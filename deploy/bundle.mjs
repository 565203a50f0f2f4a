// Builds dist/tabby-node.cjs, the one-file tabby-node every launcher runs (systemd unit, container, host
// install, lab, benchmarks), from the compiled modules in dist/src (run after tsc: `make build`).
// - CommonJS: node loads fewer of its own modules (no ES module jobs, translators, module map); lazy
//   `import()`s stay lazy (the module's code runs at the first call), and so do the node built-ins
//   those modules require (node:https…).
// - npm packages stay external (required from node_modules as before; the native addons find their
//   files as before).
// - `import.meta.url` in each module becomes the URL that module has in dist/src, so every path a
//   module derives from it (the addon, proto/, package.json, "am I the main module?") is unchanged.
// - Whitespace and syntax minified, names kept (stack traces name the functions); a linked source map
//   (used only with --enable-source-maps) maps back through dist's maps to the TypeScript.
// - dist/tabby-node.cjs.inputs.json lists the modules it was built from: src/agent/bundle-path.ts
//   uses the modules instead of a bundle older than any of them (a `tsc` run without this step).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// esbuild is a dev dependency: a tree whose node_modules predates it (npm install not run since) still
// builds the modules; the lab and benchmarks then run those (src/agent/bundle-path.ts), and an install
// stops at its check for the bundle.
const esbuild = await import('esbuild').catch(() => undefined);
if (!esbuild) {
  console.error('bundle: esbuild is not installed (run npm install): dist/tabby-node.cjs not built, tabby-node runs as modules');
  process.exit(0);
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = path.join(root, 'dist/tabby-node.cjs');
const entry = path.join(root, 'dist/src/agent/bundle-entry.js');

const moduleUrls = {
  name: 'module-urls',
  setup(build) {
    build.onLoad({ filter: /\/dist\/src\/.*\.js$/ }, async (a) => {
      const src = await fs.promises.readFile(a.path, 'utf8');
      const rel = path.relative(path.dirname(outfile), a.path);
      return { contents: src.replaceAll('import.meta.url', `__tabbyModuleUrl(${JSON.stringify(rel)})`), loader: 'js' };
    });
  },
};

const result = await esbuild.build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  banner: {
    // "use strict" first: the banner goes before esbuild's own directive, which would then be a plain string
    js: "'use strict';const __tabbyModuleUrl = (rel) => require('node:url').pathToFileURL(require('node:path').join(__dirname, rel)).href;",
  },
  plugins: [moduleUrls],
});
const inputs = Object.keys(result.metafile.inputs).map((p) => path.relative(root, path.resolve(root, p)));
fs.writeFileSync(`${outfile}.inputs.json`, `${JSON.stringify(inputs)}\n`);
console.log(`bundle: ${path.relative(root, outfile)} (${(fs.statSync(outfile).size / 1024).toFixed(0)} kB, ${inputs.length} modules)`);

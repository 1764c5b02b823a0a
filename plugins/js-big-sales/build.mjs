// Builds app.js into a component of the `transform` world: node build.mjs [OUT.wasm] [WIT DIR]
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const out = process.argv[2] ?? 'js_big_sales.wasm';
const { component } = await componentize({
  sourcePath: 'app.js',
  witPath: process.argv[3] ?? '../../wit',
  worldName: 'transform',
  // Nothing the plugin does not use: the host grants none of these anyway.
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
await writeFile(out, component);
console.log(`built ${out}: ${component.length} bytes`);

import { readFileSync, writeFileSync } from 'node:fs';
import { compileFirKernel, firKernelModulePath, firKernelModuleSource, firKernelWatPath } from './fir-kernel-source.js';

/**
 * Compiles `src/audio/fir-kernel.wat` and writes the module's bytes into
 * `src/audio/fir-kernel-module.ts`. Run after editing the `.wat` file:
 * `npm run build:kernel`. A test checks the two agree.
 */
const bytes = await compileFirKernel(readFileSync(firKernelWatPath, 'utf8'));
writeFileSync(firKernelModulePath, firKernelModuleSource(bytes));
console.log(`wrote ${firKernelModulePath} (${bytes.length} bytes of WebAssembly)`);

// Vitest (run from www/): the browser module is instantiated from the bytes `make wasm` built.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach } from 'vitest';
import { cleanup } from '@testing-library/react';
import { initWasmFromBytes } from '../wasm';

initWasmFromBytes(fs.readFileSync(path.resolve(process.cwd(), '../target/wasm/pkg/spoor_wasm_bg.wasm')));
afterEach(() => cleanup());
// jsdom has no canvas: the canvas views draw nothing there and are tested through their
// layout functions, pointer hit tests and text (getContext answers null, as without support).
HTMLCanvasElement.prototype.getContext = (() => null) as typeof HTMLCanvasElement.prototype.getContext;

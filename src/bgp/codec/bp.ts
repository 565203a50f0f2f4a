// binary-parser, loaded through its CommonJS entry (its ESM entry ships no type declarations).
import { createRequire } from 'node:module';
import type * as BinaryParser from 'binary-parser/dist/binary_parser.js';

export const { Parser } = createRequire(import.meta.url)('binary-parser') as typeof BinaryParser;

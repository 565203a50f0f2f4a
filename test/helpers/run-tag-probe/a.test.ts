// A probe for test/unit/house/run-tags.test.ts (not in any suite): test/run.sh runs this file and
// b.test.ts at once, each writes the run tag it got to TABBY_RUN_TAG_DIR.
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runTag } from '../run-tag.js';

const dir = process.env.TABBY_RUN_TAG_DIR;
if (dir) fs.writeFileSync(path.join(dir, `${process.pid}.tag`), runTag());
t.ok(dir, 'TABBY_RUN_TAG_DIR names where the tag goes');

// natmatrix's own folder, worked out once: the directory of the package.json named "natmatrix" above
// this module. The same whether this runs as TypeScript from harness/ (a checkout) or compiled from
// dist/harness/ (the installed package), so resources shipped beside the code (nft/, agents/,
// scenarios/, harness/confine.sh) are found from here and nowhere else.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackage(from: string): { dir: string; version: string } {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'natmatrix') return { dir, version: pkg.version ?? '0.0.0' };
    }
    if (dirname(dir) === dir) throw new Error(`natmatrix: no package.json named natmatrix above ${from}`);
  }
}

const found = findPackage(dirname(fileURLToPath(import.meta.url)));

/** natmatrix's own folder (no trailing slash): where npm runs its scripts. */
export const PACKAGE_DIR = found.dir;
/** natmatrix's version, from its package.json. */
export const VERSION = found.version;
/** A file or folder shipped in the package, by its path inside it. */
export const packagePath = (...parts: string[]): string => join(PACKAGE_DIR, ...parts);

// The report files of a run folder, in every format: a run (session.ts) and a merge of shards
// (merge.ts) write the same set from a Report.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderJson, renderMarkdown } from './report.ts';
import type { Report } from './types.ts';

/** The report files, by name, and how each is made from the report. */
export const REPORT_FILES = {
  'report.json': renderJson,
  'report.md': renderMarkdown,
} satisfies Record<string, (r: Report) => string>;

/** Write every report file into the run folder. */
export function writeReports(outDir: string, report: Report): void {
  for (const [name, render] of Object.entries(REPORT_FILES)) writeFileSync(join(outDir, name), render(report));
}

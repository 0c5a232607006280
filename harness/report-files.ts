// The report files of a run folder, in every format: a run (session.ts) and a merge of shards
// (merge.ts) write the same set from a Report (and its tries, which the JUnit and HTML files show).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderHtml } from './html.ts';
import { renderJunit } from './junit.ts';
import { renderJson, renderMarkdown } from './report.ts';
import type { Attempt, Report } from './types.ts';

/** The report files, by name, and how each is made from the report and its tries. */
export const REPORT_FILES = {
  'report.json': (r) => renderJson(r),
  'report.md': (r) => renderMarkdown(r),
  'report.junit.xml': (r, attempts) => renderJunit(r, { attempts }),
  // the diff view comes from report.baseline (--baseline)
  'report.html': (r, attempts) => renderHtml(r, { attempts }),
} satisfies Record<string, (r: Report, attempts: Attempt[] | undefined) => string>;

/** Write every report file into the run folder. */
export function writeReports(outDir: string, report: Report, attempts?: Attempt[]): void {
  for (const [name, render] of Object.entries(REPORT_FILES)) writeFileSync(join(outDir, name), render(report, attempts));
}

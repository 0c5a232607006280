// Expectations: what a pairing should come to, per agent. A scenario can name outcomes cell by cell;
// an agent (its manifest) or a scenario can bring a model that derives them from the NATs' RFC 4787
// behaviours — one of the shipped models (model.ts) or ordered rules written as data — and an
// expectation can be a success rate ("at least 50 %"), judged with the Wilson interval, for strategies
// that connect only sometimes. In observe-only mode nothing is expected: the run reports what happened.
import { z } from 'zod';
import { expectedByModel, MODELS, type Model } from './model.ts';
import { findNat, type NatType } from './nat.ts';
import { PATHS, type Expectation, type RateExpectation } from './types.ts';

export type { Expectation, RateExpectation };

const pathName = z.string().regex(/^[a-z][a-z0-9-]*$/, 'a path name: lower-case letters, digits and dashes');

const EXPECTED = ['direct', 'relayed', 'failed', ...PATHS] as const;
export const expectedSchema = z.enum(EXPECTED, { error: `one of ${EXPECTED.map((e) => JSON.stringify(e)).join('|')}, or a rate { "atLeast": 0.5 }` });

export const rateSchema = z
  .object({
    atLeast: z.number().gt(0, 'a rate above 0 (0 would expect nothing)').max(1),
    path: pathName.optional(),
  })
  .strict();

/** One expectation as a scenario or a rule spells it. */
export const expectationSchema = z.union([expectedSchema, rateSchema]);

const behaviour = z.enum(['endpoint-independent', 'address-dependent', 'address-and-port-dependent']);

/** Which NAT types a rule's side matches: every field given must hold. */
const behaviours = z.union([behaviour, z.array(behaviour).min(1)]);

const natMatchSchema = z
  .object({
    /** one behaviour, or a list of them (any matches) */
    mapping: behaviours.optional(),
    filtering: behaviours.optional(),
    /** NAT type names (or aliases): a name without knobs matches the type with any knobs ("symmetric"
     * matches "symmetric:hairpin"), a name with knobs only that exact type */
    type: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** the router forwards no UDP (":no-udp") */
    noUdp: z.boolean().optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    for (const name of typeof m.type === 'string' ? [m.type] : (m.type ?? [])) {
      if (!findNat(name)) ctx.addIssue({ code: 'custom', path: ['type'], message: `unknown NAT type "${name}"` });
    }
  });

export const ruleSchema = z
  .object({
    a: natMatchSchema.optional(),
    b: natMatchSchema.optional(),
    /** also match with a and b swapped (default true: most strategies are symmetric) */
    symmetric: z.boolean().default(true),
    expect: expectationSchema,
    /** why: for the reader of the manifest, ignored by the harness */
    note: z.string().optional(),
  })
  .strict();

export type Rule = z.output<typeof ruleSchema>;

/** An agent's expectation model: a shipped one by name, or ordered rules (the first that matches wins;
 * a rule without `a` and `b` matches everything, so it serves as the default). */
export const expectationModelSchema = z.union([
  z.object({ model: z.enum(MODELS) }).strict(),
  z.object({ rules: z.array(ruleSchema).min(1) }).strict(),
]);

export type ExpectationModel = { model: Model } | { rules: Rule[] };


function sideMatches(m: z.output<typeof natMatchSchema> | undefined, t: NatType): boolean {
  if (!m) return true;
  const among = (want: string | string[] | undefined, got: string) => want === undefined || (typeof want === 'string' ? want === got : want.includes(got));
  if (!among(m.mapping, t.mapping) || !among(m.filtering, t.filtering)) return false;
  if (m.noUdp !== undefined && m.noUdp !== (t.noUdp === true)) return false;
  if (m.type !== undefined) {
    const base = t.name.split(':')[0]!;
    const fits = (typeof m.type === 'string' ? [m.type] : m.type).some((n) => {
      const want = findNat(n)?.name ?? n;
      return want.includes(':') ? want === t.name : want === base || want === t.name;
    });
    if (!fits) return false;
  }
  return true;
}

/** What a model expects of a peer behind `a` paired with one behind `b`; undefined when no rule matches. */
export function expectedByRules(rules: Rule[], a: NatType, b: NatType): Expectation | undefined {
  for (const r of rules) {
    if (sideMatches(r.a, a) && sideMatches(r.b, b)) return r.expect;
    if (r.symmetric && sideMatches(r.a, b) && sideMatches(r.b, a)) return r.expect;
  }
  return undefined;
}

export function expectedByExpectationModel(m: ExpectationModel, a: NatType, b: NatType): Expectation | undefined {
  return 'model' in m ? expectedByModel(m.model, a, b) : expectedByRules(m.rules, a, b);
}

export const isRate = (e: Expectation): e is RateExpectation => e !== null && typeof e === 'object';

/** "direct", "≥ 50 % direct-udp", "observe" */
export function expectationText(e: Expectation): string {
  if (e === null) return 'observe';
  if (isRate(e)) return `≥ ${Math.round(e.atLeast * 100)} %${e.path ? ` ${e.path}` : ''}`;
  return e;
}

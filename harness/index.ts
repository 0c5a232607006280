// natmatrix as a library: `import { runScenario, defineScenario, buildLab } from 'natmatrix'`.
//
//   runScenario(scenario, options)  a whole scenario run, as the scenario command does it: the report
//   buildLab({ a, b })              one lane to drive from a test: spawn processes in its nodes, read
//                                   its routers' conntrack and rulesets; torn down on dispose
//   defineScenario({...})           a typed scenario (a file's default export, or runScenario's input)
//   mergeRuns(dirs, { out })        the run folders of a run's shards (--shard i/n) pooled into one
//
// Everything needs root except defineScenario, prepareRun and the types.
export { defineScenario, type Scenario, type ScenarioInput } from './scenario.ts';
export { runScenario, prepareRun, type PreparedRun, type RunScenarioOptions } from './session.ts';
export { mergeRuns, type MergeOptions } from './merge.ts';
export { buildLab, type LabNode, type LabOptions, type LabProcess, type LabRouter, type NatLab, type SpawnOptions } from './testlab.ts';
export { EnvironmentError, EXIT, LeftoverError, RunError, UsageError, VerifyError } from './errors.ts';
export { NAT_TYPES, findNat, type NatType } from './nat.ts';
export { VERSION } from './package.ts';
export type { ProcResult } from './proc.ts';
export type { Attempt, Cell, Expectation, MergedShard, Outcome, Report, Summary } from './types.ts';

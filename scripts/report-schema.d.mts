// Types of scripts/report-schema.mjs, for the test that keeps the published schema current.
export declare function reportSchema(): Record<string, unknown>;

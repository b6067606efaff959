/**
 * @dbtap/agent.
 *
 * @packageDocumentation
 */
export const version = '0.1.0';

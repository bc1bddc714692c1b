export * from './labels.js';
export * from './violations.js';
export * from './topics.js';
export * from './messages.js';
export * from './signing.js';

// Preloaded (`node --import`) by the no-op test: makes `@opentelemetry/api` unresolvable to `require`, which is how
// lib/telemetry.ts loads it, as in an install without the package.
import Module from 'node:module';

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@opentelemetry/api' || request.startsWith('@opentelemetry/api/')) {
    throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
  }
  return resolve.call(this, request, ...rest);
};

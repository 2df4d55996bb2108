// Fastify compiles every route's schemas while the app starts: Ajv for the request parts and
// fast-json-stringify for the responses. For this API that was about 0.3 s of CPU in every
// node's start (a third of it), for routes a node mostly never serves, and test runs start
// hundreds of nodes. These factories hand Fastify the same compilers, Fastify's own defaults,
// but each route's schema is compiled on the route's first request instead, once. A schema
// that does not compile therefore fails that route's first request (500, logged) rather than
// the start; tests/admin-schemas (admin/lazy-compilers.test.ts) compiles every route's schemas
// eagerly so a broken one still fails a test.
import AjvCompiler from '@fastify/ajv-compiler';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
type BuildValidator = NonNullable<CompilersFactory['buildValidator']>;
type BuildSerializer = NonNullable<CompilersFactory['buildSerializer']>;
type RouteValidatorCompiler = ReturnType<BuildValidator>;
type RouteSerializerCompiler = ReturnType<BuildSerializer>;

interface Validate {
  (data: unknown): unknown;
  errors?: unknown;
}

/** Every compile the lazy compilers deferred, so a test can run them all (compileDeferred). */
export interface DeferredCompiles {
  readonly pending: Array<() => void>;
}

export function lazyCompilers(deferred: DeferredCompiles = { pending: [] }): Required<Pick<CompilersFactory, 'buildValidator' | 'buildSerializer'>> {
  const buildValidator = AjvCompiler() as BuildValidator;
  const buildSerializer = (SerializerSelector as unknown as () => BuildSerializer)();
  return {
    buildValidator: ((externalSchemas: Parameters<BuildValidator>[0], options: Parameters<BuildValidator>[1]) => {
      let compiler: RouteValidatorCompiler | undefined;
      return ((route: Parameters<RouteValidatorCompiler>[0]) => {
        let validate: Validate | undefined;
        const compile = (): Validate => (validate ??= (compiler ??= buildValidator(externalSchemas, options))(route) as Validate);
        deferred.pending.push(compile);
        // Fastify reads `errors` off the function it was given after a failed validation.
        const lazy: Validate = (data) => {
          const real = compile();
          const result = real(data);
          lazy.errors = real.errors;
          return result;
        };
        return lazy;
      }) as RouteValidatorCompiler;
    }) as BuildValidator,
    buildSerializer: ((externalSchemas: Parameters<BuildSerializer>[0], options: Parameters<BuildSerializer>[1]) => {
      let compiler: RouteSerializerCompiler | undefined;
      return ((route: Parameters<RouteSerializerCompiler>[0]) => {
        let serialize: ((data: unknown) => string) | undefined;
        const compile = (): ((data: unknown) => string) => (serialize ??= (compiler ??= buildSerializer(externalSchemas, options))(route) as (data: unknown) => string);
        deferred.pending.push(compile);
        return (data: unknown) => compile()(data);
      }) as RouteSerializerCompiler;
    }) as BuildSerializer,
  };
}

/** Compiles everything deferred so far; throws the first schema that does not compile. */
export function compileDeferred(deferred: DeferredCompiles): number {
  for (const compile of deferred.pending) compile();
  return deferred.pending.length;
}

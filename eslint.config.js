// Lint for Portcullis: typescript-eslint's recommended type-aware rules plus the purity fence
// that keeps src/policy free of I/O (see scripts/check-policy-purity.mjs for the grep twin).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = ['net', 'tls', 'http', 'https', 'http2', 'fs', 'fs/promises', 'child_process', 'dgram', 'dns', 'worker_threads', 'cluster'];

export default tseslint.config(
  { ignores: ['dist/**', 'dist-*/**', 'node_modules/**', 'loadtest/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', Buffer: 'readonly' } },
  },
  {
    files: ['src/policy/**/*.ts'],
    ignores: ['src/policy/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [...ioModules.flatMap((m) => [m, `node:${m}`]), 'undici', 'node:process', 'process', 'node:perf_hooks', 'perf_hooks']
          .map((name) => ({ name, message: 'src/policy is the pure core: no sockets, files, clocks or env.' })),
      }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'The policy core takes time as an input, never reads a clock.' },
        { object: 'process', property: 'env', message: 'The policy core never reads the environment.' },
        { object: 'performance', property: 'now', message: 'The policy core never reads a clock.' },
      ],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'The policy core never touches the process.' },
        { name: 'fetch', message: 'The policy core does no I/O.' },
      ],
      'no-restricted-syntax': ['error', { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'The policy core never reads a clock.' }],
    },
  },
);

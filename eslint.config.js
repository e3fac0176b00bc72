import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.tmp/', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    files: ['test/**/*.ts', 'cli/**/*.ts', 'examples/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  // Production code: one kubeconfig loader (src/config), deadlines that abort requests
  // (streams/kube-call.ts), and imports that only run downward: cli → streams → src.
  {
    files: ['src/**/*.ts', 'streams/**/*.ts', 'cli/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...['loadFromFile', 'loadFromDefault', 'loadFromCluster', 'loadFromString', 'mergeConfig'].map((property) => ({
          property,
          message: "load kubeconfigs with src/config's loader (loadKubeconfigContext), the one every binary uses",
        })),
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='Promise'][callee.property.name='race']",
          message: 'a deadline must abort the request: withDeadline/callOptions (streams/kube-call.ts) or an rxjs timeout',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/streams/**', '**/cli/**', '**/test/**'], message: 'src/ is the pure core: it imports nothing from streams/, cli/ or test/' }] }],
    },
  },
  {
    files: ['streams/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/cli/**', '**/test/**'], message: 'streams/ imports only src/ and itself' }] }],
    },
  },
  {
    files: ['cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/test/**'], message: 'cli/ never imports test code' }] }],
    },
  },
);

/**
 * `--help` for the project's scripts (`npm run <script> -- --help`): prints the usage and exits
 * 0 before the script does anything; an argument the script does not take is a usage error
 * (exit 2) instead of being ignored.
 */
export function answerHelp(
  usage: string,
  options: { takesArguments?: boolean; argv?: string[] } = {},
): void {
  const argv = options.argv ?? process.argv.slice(2);
  const text = usage.endsWith('\n') ? usage : `${usage}\n`;
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(text);
    process.exit(0);
  }
  if (!options.takesArguments && argv.length > 0) {
    process.stderr.write(`unknown argument ${JSON.stringify(argv[0])}\n${text}`);
    process.exit(2);
  }
}

// Prints the Node version the suite ran on, then a plain "N passed, N failed[, N skipped]" as the
// very last line, which CI reads.
module.exports = class PlainSummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests
    const line = `${results.numPassedTests} passed, ${results.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : '')
    process.once('exit', () => process.stderr.write(`node ${process.version}\n${line}\n`))
  }
}

// Names the tests give what they create in the kernel (namespaces, links) and in /tmp start with the
// run tag. tap runs test files in parallel, each in its own process: the pid (base 36, ≤ 5 characters) is
// unique among the files running at once, so two files never share a name whatever their own suffixes,
// and short enough for 15-character interface names. TABBY_TEST_RUN overrides it (one file run by hand).
export const runId = (): string => process.env.TABBY_TEST_RUN ?? process.pid.toString(36);

/** `tb<runId>`: the prefix of every kernel name and temp directory a test makes. */
export const runTag = (): string => `tb${runId()}`;

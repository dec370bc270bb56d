"""The files bulkimg writes, one typed model each, with the one reader and writer every module uses
(docs/formats.md describes the same files for people):

| file | module |
| --- | --- |
| `output/plan.jsonl`, `run-plan-<run>.jsonl`, `retry/plan-retry-*.jsonl` | `bulkimg.formats.plan` |
| `output/manifest.jsonl` | `bulkimg.formats.manifest` |
| `output/failures.jsonl` (and a run's carried failures) | `bulkimg.formats.failures` |
| `output/run.json` | `bulkimg.formats.run` |
| `output/submitted.jsonl` | `bulkimg.formats.submitted` |

Every JSONL file goes through `bulkimg.formats.jsonl`: records are read one at a time as their
model (a line that is not one is an InputFileError naming the file and line) and written whole,
0600, to a temporary name that replaces the file only when complete.
"""

"""The files bulkimg writes, one typed model each, with the one reader and writer every module uses
(docs/formats.md describes the same files for people):

| file | module |
| --- | --- |
| `output/plan.jsonl`, `run-plan-<run>.jsonl`, `retry/plan-retry-*.jsonl` | `formats.plan` |
| `output/build-report.json` | `formats.build_report` |
| `output/run.json` | `formats.run` |
| `output/manifest.jsonl` | `formats.manifest` |
| `output/failures.jsonl` (and a run's carried failures) | `formats.failures` |
| the bulk mutations' lines (`productset*.jsonl`, resolved, phase 2, retry) | `formats.lines` |
| `output/resolution-<run>.jsonl`, `output/check/resolution-check.jsonl` | `formats.resolution` |
| `output/submitted.jsonl` | `formats.submitted` |
| `output/report.json`, `output/report.md` (`bulkimg run`) | `formats.nightly_report` |
| `logs/missing_images_*.log`, `logs/image_upload_failures_*.log` | `formats.logs` |
| `output/state.sqlite` (what is on the shop's products; schema migrations) | `formats.state` |

Every JSONL file goes through `formats.jsonl`: records are read one at a time as their model (a
line that is not one is an InputFileError naming the file and line) and written whole, 0600, to a
temporary name that replaces the file only when complete. The caches (`output/cache/*.sqlite`)
belong to the modules they speed up: `images/cache.py`, `report/thumbnails.py`.
"""

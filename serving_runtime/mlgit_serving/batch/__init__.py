"""The batch runner: a model over every file of a folder or S3 prefix, one output per input (docs/batch.md).

`mlgit batch` calls it in-process; inside the model image it is `python -m mlgit_serving.batch` (the batch Job's
command). Modules: storage (folders and S3), adapters (files to tensors and back), fits (the FITS reader),
runner (batching, resuming, the summary), progress (what the terminal shows).
"""

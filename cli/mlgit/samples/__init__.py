"""model/sample.json: checking it against the signature (check), its tensors and the model's answers
(tensors), recomputing its expected outputs after retraining (refresh).

`compare_outputs` and `run_onnxruntime` are what every scaffolded tests/test_model.py imports from
here: existing model repositories keep working whatever moves inside this package.
"""

from mlgit.samples.tensors import compare_outputs, run_onnxruntime

__all__ = ["compare_outputs", "run_onnxruntime"]

from mlgit.main import run

run()

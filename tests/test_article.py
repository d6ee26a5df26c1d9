"""harness.article: the article's script is text the benchmark runs, not code that runs on import."""

import subprocess
import sys

from harness import article


def test_importing_the_article_trains_nothing_and_imports_no_keras():
    code = "import sys, harness.article; print('keras' in sys.modules, 'sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "False False\n"


def test_the_script_is_the_articles_iris_example():
    compile(article.SCRIPT, "article.py", "exec")  # runnable Python
    for line in (
        "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)",
        'model.add(Dense(4, input_dim=4, activation="relu"))',
        'model.add(Dense(3, activation="softmax"))',
        'model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])',
        "model.fit(X_train, y_train, epochs=100, batch_size=10)",
    ):
        assert line in article.SCRIPT.splitlines()

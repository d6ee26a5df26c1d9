"""The article's iris script as it is written there (comments translated), kept as text: the
benchmark runs it as the plain-Keras reference with `python -m harness.article`. Importing
this module trains nothing and imports no Keras."""

SCRIPT = """\
import numpy as np
from keras.layers import Dense
from keras.models import Sequential
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

# Load the data
iris = load_iris()
X = iris.data
y = iris.target

# Preprocess the data
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)

# Build the network
model = Sequential()
model.add(Dense(4, input_dim=4, activation="relu"))
model.add(Dense(3, activation="softmax"))

# Compile the model
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

# Train the model
model.fit(X_train, y_train, epochs=100, batch_size=10)

# Evaluate the model
loss, accuracy = model.evaluate(X_test, y_test)
print("Loss:", loss)
print("Accuracy:", accuracy)
"""


def main():
    """Run the script as the article does: a fresh namespace, plain Keras, its own output."""
    exec(compile(SCRIPT, "article.py", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main()

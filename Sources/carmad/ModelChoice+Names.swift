import ArgumentParser
import Foundation

// `--embedding-model minilm|bge-small|DIR`: the built-in models by name, each in a directory of its
// own under the models directory scripts/install-deps.sh fills.

extension ModelChoice {
    /// Names a model may be given by, and the directory each names under the models directory.
    static let names: [(names: [String], directory: String)] = [
        (["minilm", "all-minilm-l6-v2"], "all-minilm-l6-v2"),
        (["bge-small", "bge-small-en-v1.5"], "bge-small-en-v1.5"),
    ]

    /// Where the named models are: $CARMA_MODEL_HOME, else /usr/local/share/carma/models.
    static func home(_ environment: [String: String]) -> String {
        environment["CARMA_MODEL_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/local/share/carma/models"
    }

    /// The directory of `choice`: a model's name (its links resolved, so that the model's name taken
    /// from its directory stays the same however it is reached), or else a directory as given.
    static func directory(for choice: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        guard let entry = Self.names.first(where: { $0.names.contains(choice.lowercased()) }) else {
            guard choice.contains("/") || FileManager.default.fileExists(atPath: choice) else {
                throw ValidationError(
                    "no embedding model named '\(choice)': give a directory, or one of \(Self.names.map { $0.names[0] }.joined(separator: ", "))")
            }
            return choice
        }
        let path = Self.home(environment) + "/" + entry.directory
        guard FileManager.default.fileExists(atPath: path + "/config.json") else {
            throw ValidationError("the embedding model '\(choice)' is not installed at \(path) (scripts/install-deps.sh installs it)")
        }
        return URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }
}

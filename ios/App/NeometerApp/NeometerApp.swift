import SwiftUI

@main
struct NeometerApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}

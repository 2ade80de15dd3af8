// The same module the Makefile builds with javac: plain Java 17, no Android dependency.
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

dependencies {
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
}

tasks.test {
    useJUnitPlatform()
    // The golden vectors Python writes (`make golden`), and the repository for models/*/export.
    systemProperty("neometer.golden", rootProject.projectDir.resolve("../tests/golden").absolutePath)
    systemProperty("neometer.repo", rootProject.projectDir.resolve("..").absolutePath)
}

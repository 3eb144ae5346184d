// `nnc run --plot` draws an SVG that a real browser renders: headless
// Chromium (Debian's chromium, installed by scripts/install-deps.sh) takes a
// screenshot, and the curves' colours must be on it.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "io/image_decode.h"
#include "test_util.h"

using namespace nnc;

namespace {

// Pixels within a small distance of an RGB colour (anti-aliasing blends edges).
int64_t pixelsNear(const Image& im, int r, int g, int b) {
  int64_t n = 0;
  for (int64_t i = 0; i < im.width * im.height; ++i) {
    const uint8_t* p = &im.pixels[static_cast<size_t>(i * im.channels)];
    n += std::abs(p[0] - r) + std::abs(p[1] - g) + std::abs(p[2] - b) < 24;
  }
  return n;
}

}  // namespace

TEST_CASE("the --plot SVG renders in headless Chromium with both curves", "[plot][browser]") {
  const auto dir = std::filesystem::temp_directory_path() / ("nnc_plot_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string svg = (dir / "p.svg").string(), png = (dir / "shot.png").string();
  auto r = test::runCli({"run", test::sourcePath("examples/mnist_mlp.nn"), "--epochs", "2", "--limit", "2000",
                         "--test-limit", "1000", "--quiet", "--plot", svg});
  REQUIRE(r.code == 0);
  REQUIRE(std::system("command -v chromium >/dev/null") == 0);  // scripts/install-deps.sh installs it
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  const std::string cmd = "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
                          "--window-size=900,360 --screenshot=" + png + " file://" + svg + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto im = readImage(png);
  REQUIRE(im);
  CHECK(im->width == 900);
  CHECK(im->height == 360);
  REQUIRE(im->channels >= 3);
  const int64_t white = pixelsNear(*im, 255, 255, 255);
  INFO("white " << white);
  CHECK(white > im->width * im->height / 2);  // a chart on a white page, not a blank or an error page
  CHECK(white < im->width * im->height);
  CHECK(pixelsNear(*im, 0x1f, 0x77, 0xb4) > 200);  // the train series (palette blue)
  CHECK(pixelsNear(*im, 0xff, 0x7f, 0x0e) > 200);  // the test series (palette orange)
  std::filesystem::remove_all(dir);
}

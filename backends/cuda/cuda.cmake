# The CUDA backend (backends/cuda), included by the top-level CMakeLists.txt after
# v4engine_obj exists. V4_CUDA is on when nvcc is found, off otherwise; with it off the
# library gets a stub whose cuda_devices() says why there is no CUDA device.
#
# Outputs: V4_CUDA_LINK (what v4engine / v4engine_static link for CUDA) and
# V4_CUDA_CONFIG_DEPS (lines for the installed package config).
include(CheckLanguage)
check_language(CUDA)
if(CMAKE_CUDA_COMPILER AND NOT V4_SANITIZE)  # sanitizer builds leave CUDA out
  set(V4_CUDA_DEFAULT ON)
else()
  set(V4_CUDA_DEFAULT OFF)
endif()
option(V4_CUDA "Build the CUDA backend (auto: on when nvcc is found)" ${V4_CUDA_DEFAULT})
# One architecture by default so CI and developer builds compile quickly; the release
# preset builds every target GPU (sm_89 RTX 4090, sm_90a H100, sm_120a RTX 5090).
set(V4_CUDA_ARCHS "89" CACHE STRING "CUDA architectures to build, e.g. 89;90a;120a")

set(V4_CUDA_LINK "")
set(V4_CUDA_CONFIG_DEPS "")
set(V4_CUDA_DIR ${CMAKE_CURRENT_SOURCE_DIR}/backends/cuda)

if(NOT V4_CUDA)
  target_sources(v4engine_obj PRIVATE ${V4_CUDA_DIR}/cuda_stub.cpp)
  return()
endif()
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "V4_CUDA=ON but no CUDA compiler (nvcc) was found: install the CUDA "
                      "toolkit and put nvcc on the PATH, or configure with -DV4_CUDA=OFF")
endif()

set(CMAKE_CUDA_ARCHITECTURES ${V4_CUDA_ARCHS})
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
message(STATUS "v4engine: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${V4_CUDA_ARCHS})")

file(GLOB V4_CUDA_SOURCES CONFIGURE_DEPENDS ${V4_CUDA_DIR}/*.cpp ${V4_CUDA_DIR}/*.cu)
list(FILTER V4_CUDA_SOURCES EXCLUDE REGEX "cuda_stub\\.cpp$")
target_sources(v4engine_obj PRIVATE ${V4_CUDA_SOURCES})
# The runtime is linked statically: libv4engine then loads on a machine without the NVIDIA
# driver (libcuda.so is opened lazily by cudart and its absence is an error code, not a
# missing library). The imported target's include directories are SYSTEM, so CUDA's
# headers do not trip -Wpedantic/-Werror in host code.
target_link_libraries(v4engine_obj PRIVATE CUDA::cudart_static)
target_compile_definitions(v4engine_obj PUBLIC V4_HAVE_CUDA=1)
# v4engine_obj existed before CUDA was enabled, so its CUDA properties are set here. C++17 for
# the .cu files: CMake 3.25 knows no C++20 flag for nvcc, and the kernels need nothing newer.
set_target_properties(v4engine_obj PROPERTIES CUDA_VISIBILITY_PRESET hidden
  CUDA_ARCHITECTURES "${V4_CUDA_ARCHS}" CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
target_compile_options(v4engine_obj PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --expt-relaxed-constexpr>)
if(V4_WERROR)
  target_compile_options(v4engine_obj PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror --Werror=all-warnings>)
endif()
set(V4_CUDA_LINK CUDA::cudart_static)
set(V4_CUDA_CONFIG_DEPS "find_dependency(CUDAToolkit)\n")

# The Vulkan backend (backends/vulkan). V4_VULKAN defaults to ON when the Vulkan headers
# (libvulkan-dev) and glslc are found. The loader is opened at run time (vk_loader.cpp),
# so the library does not link libvulkan. Shaders are compiled by glslc at build time and
# embedded: nothing is compiled or shipped at run time.
# Sets V4_VULKAN_SOURCES (to add to the library) when enabled.
find_package(Vulkan QUIET)
find_program(V4_GLSLC glslc)
set(V4_VULKAN_FOUND OFF)
if(Vulkan_INCLUDE_DIRS AND V4_GLSLC)
  set(V4_VULKAN_FOUND ON)
endif()
option(V4_VULKAN "Build the Vulkan backend (needs libvulkan-dev and glslc)" ${V4_VULKAN_FOUND})
set(V4_VULKAN_SOURCES "")
if(NOT V4_VULKAN)
  return()
endif()
if(NOT V4_VULKAN_FOUND)
  message(FATAL_ERROR "V4_VULKAN=ON but the Vulkan headers or glslc are missing "
                      "(Debian: apt-get install libvulkan-dev glslc)")
endif()
message(STATUS "v4engine: Vulkan backend ON (glslc: ${V4_GLSLC})")

set(_vk_dir ${CMAKE_CURRENT_LIST_DIR})
set(_vk_out ${CMAKE_CURRENT_BINARY_DIR}/vulkan_shaders)
file(MAKE_DIRECTORY ${_vk_out})
file(GLOB _vk_includes ${_vk_dir}/shaders/*.glsl)

# name | source | defines (comma-separated)
set(_vk_variants
  "elementwise|elementwise|"
  "rope|rope|"
  "rms_norm|rms_norm|"
  "rms_norm_sg|rms_norm|USE_SUBGROUP"
  "softmax|softmax|"
  "softmax_sg|softmax|USE_SUBGROUP"
  "copy_f32_f16|copy|WTYPE_F32,OUT_F16"
  "quantize_q8|quantize_q8|")
foreach(t f32 f16 bf16 fp8_kv)  # KV page types (vk_kv_ops.cpp)
  string(TOUPPER ${t} T)
  list(APPEND _vk_variants "kv_store_${t}|kv_store|WTYPE_${T}" "attention_${t}|attention|WTYPE_${T}"
       "attention_${t}_split|attention|WTYPE_${T},SPLIT")
endforeach()
list(APPEND _vk_variants "attention_merge|attention_merge|")
foreach(t f32 f16 bf16 f8_e4m3 f8_e5m2 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k fp8_b32 q4_0_r4 q8_0_r4
    q4_0_x16 q8_0_x16)
  string(TOUPPER ${t} T)
  list(APPEND _vk_variants "get_rows_${t}|get_rows|WTYPE_${T}" "mul_mat_${t}|mul_mat|WTYPE_${T}"
       "mul_mat_${t}_sg|mul_mat|WTYPE_${T},USE_SUBGROUP"
       "mul_mat_${t}_s|mul_mat|WTYPE_${T},SMALL_STORAGE"
       "mul_mat_${t}_sg_s|mul_mat|WTYPE_${T},USE_SUBGROUP,SMALL_STORAGE" "mul_mat_tiled_${t}|mul_mat_tiled|WTYPE_${T}"
       "copy_${t}_f32|copy|WTYPE_${T}")
endforeach()

# Integer dot-product matvecs (mul_mat_dot.comp, after quantize_q8), chosen only when the
# device has them.
foreach(t q8_0 q4_0 q4_0_r4 q8_0_r4 q4_0_x16 q8_0_x16)
  string(TOUPPER ${t} T)
  list(APPEND _vk_variants "mul_mat_dot_${t}|mul_mat_dot|WTYPE_${T}"
       "mul_mat_dot_${t}_sg|mul_mat_dot|WTYPE_${T},USE_SUBGROUP")
endforeach()

set(_vk_spv_args "")
set(_vk_spv_files "")
foreach(v IN LISTS _vk_variants)
  string(REGEX MATCH "^([^|]+)\\|([^|]+)\\|(.*)$" _ "${v}")
  set(name ${CMAKE_MATCH_1})
  set(src ${CMAKE_MATCH_2})
  string(REPLACE "," ";" d "${CMAKE_MATCH_3}")
  set(defs "")
  foreach(one IN LISTS d)
    list(APPEND defs "-D${one}")
  endforeach()
  set(spv ${_vk_out}/${name}.spv)
  add_custom_command(OUTPUT ${spv}
    COMMAND ${V4_GLSLC} --target-env=vulkan1.2 -O ${defs} -I ${_vk_dir}/shaders
            ${_vk_dir}/shaders/${src}.comp -o ${spv}
    DEPENDS ${_vk_dir}/shaders/${src}.comp ${_vk_includes}
    COMMENT "glslc ${name}" VERBATIM)
  list(APPEND _vk_spv_args "${name}=${spv}")
  list(APPEND _vk_spv_files ${spv})
endforeach()

set(_vk_embedded ${_vk_out}/vk_shaders_embedded.cpp)
string(REPLACE ";" "|" _vk_spv_arg_str "${_vk_spv_args}")  # ';' would split the argument
add_custom_command(OUTPUT ${_vk_embedded}
  COMMAND ${CMAKE_COMMAND} -DOUT=${_vk_embedded} "-DSHADERS=${_vk_spv_arg_str}"
          -P ${_vk_dir}/embed_spirv.cmake
  DEPENDS ${_vk_spv_files} ${_vk_dir}/embed_spirv.cmake
  COMMENT "embedding SPIR-V" VERBATIM)

file(GLOB V4_VULKAN_SOURCES CONFIGURE_DEPENDS ${_vk_dir}/*.cpp)
list(APPEND V4_VULKAN_SOURCES ${_vk_embedded})
# Vulkan structs are initialised as `T x{VK_STRUCTURE_TYPE_...}` (the rest zero), the
# idiom of the API: not a missing initializer.
set_source_files_properties(${V4_VULKAN_SOURCES} PROPERTIES COMPILE_OPTIONS
  "-Wno-missing-field-initializers")
